"""`python -m runbook_sandbox.k8s --state-dir DIR [--port 0] [--scenario S] [--anchor ISO] [--pods N]
[--tick SECONDS] [--aws-endpoint URL | --aws-url-file PATH] [--pod-aws-url-file PATH]
[--image-entrypoint IMAGE=PROGRAM ...] [--job-backoff SECONDS]`

Seeds the cluster, serves it on 127.0.0.1, writes `DIR/kubeconfig` (context `runbook-sandbox`), then
prints one JSON line `{"url", "kubeconfig", "pid"}`: the manager's signal that this part is ready.
SIGTERM or SIGINT stops the server and the controller promptly (exit 0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from runbook_sandbox import timeline

SCENARIOS = ("crashloop", "latency", "node")


def kubeconfig(url: str) -> str:
    """A kubeconfig for the sandbox (JSON is valid YAML; no YAML library needed)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": "runbook-sandbox", "cluster": {"server": url}}],
            "users": [{"name": "runbook-sandbox", "user": {"token": "sandbox-token-not-a-secret"}}],
            "contexts": [
                {
                    "name": "runbook-sandbox",
                    "context": {
                        "cluster": "runbook-sandbox",
                        "user": "runbook-sandbox",
                        "namespace": "default",
                    },
                }
            ],
            "current-context": "runbook-sandbox",
        },
        indent=2,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runbook_sandbox.k8s")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        help="crashloop, latency, node, all or none (repeatable; scenarios compose)",
    )
    parser.add_argument("--anchor", default=None, help="ISO time the seeded history is placed relative to")
    parser.add_argument("--pods", type=int, default=0, help="also seed namespace `bulk` with N running pods")
    parser.add_argument("--tick", type=float, default=0.5, help="controller period in seconds")
    parser.add_argument(
        "--aws-endpoint",
        default="",
        help="the AWS part's URL: nodes of the node scenario are its EC2 instances",
    )
    parser.add_argument(
        "--aws-url-file", type=Path, default=None, help="a file the AWS part writes its URL to"
    )
    parser.add_argument(
        "--pod-aws-url-file",
        type=Path,
        default=None,
        help="a file holding the AWS part's URL, given to Job pods as AWS_ENDPOINT_URL (IRSA's stand-in)",
    )
    parser.add_argument(
        "--image-entrypoint",
        action="append",
        default=[],
        metavar="IMAGE=PROGRAM",
        help="what a Job container without `command` runs for IMAGE (repeatable; default: none)",
    )
    parser.add_argument(
        "--job-backoff", type=float, default=1.0, help="the job controller's first back-off, seconds"
    )
    args = parser.parse_args(argv)
    entrypoints: dict[str, list[str]] = {}
    for item in args.image_entrypoint:
        image, sep, program = item.partition("=")
        if not sep or not image or not program.split():
            parser.error(f"--image-entrypoint wants IMAGE=PROGRAM, got {item!r}")
        entrypoints[image] = program.split()
    requested = set(args.scenario)
    scenarios = set(SCENARIOS) if "all" in requested else requested - {"none"}
    if "all" in requested and not (args.aws_endpoint or args.aws_url_file):
        scenarios.discard("node")
    unknown = scenarios - set(SCENARIOS) - set(timeline.SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    now = dt.datetime.now(dt.UTC)
    anchor = dt.datetime.fromisoformat(args.anchor.replace("Z", "+00:00")) if args.anchor else now
    if anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=dt.UTC)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=args.state_dir / "k8s.log", level=logging.WARNING)

    from runbook_sandbox.k8s.api import Api
    from runbook_sandbox.k8s.controller import Controller
    from runbook_sandbox.k8s.seeds import seed
    from runbook_sandbox.k8s.server import make_server
    from runbook_sandbox.k8s.store import Store

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    store = Store()
    from runbook_sandbox.k8s.podenv import Node

    node = Node(
        state_dir=args.state_dir.resolve(), aws_url_file=args.pod_aws_url_file, entrypoints=entrypoints
    )
    controller = Controller(store, tick=args.tick, node=node, backoff=args.job_backoff)
    cloud = None
    if args.aws_endpoint or args.aws_url_file:
        from runbook_sandbox.k8s.cloud import CloudNodes, wait_for_url

        endpoint = args.aws_endpoint or wait_for_url(args.aws_url_file)
        cloud = CloudNodes(store, endpoint=endpoint, group=timeline.NODE_ASG, cluster=timeline.NODE_CLUSTER)
    try:
        from runbook_sandbox.k8s.rbac import bootstrap_roles

        for role in bootstrap_roles():
            store.create("clusterroles", role, created=anchor)
        seed(store, controller, scenarios=scenarios, anchor=anchor, now=now, pods=args.pods, cloud=cloud)
    except Exception as exc:
        logging.exception("seeding failed")
        print(json.dumps({"error": f"seeding failed: {type(exc).__name__}: {exc}"}), flush=True)
        return 1
    server, log = make_server(
        api_factory=lambda address: Api(store, controller, server_address=address, state_dir=args.state_dir),
        port=args.port,
        log_path=args.state_dir / "k8s-requests.jsonl",
    )
    url = f"http://127.0.0.1:{server.server_port}"
    node.api_url = url
    config_path = args.state_dir / "kubeconfig"
    config_path.write_text(kubeconfig(url))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    controller.start()
    if cloud is not None:
        cloud.start(args.tick)
    print(json.dumps({"url": url, "kubeconfig": str(config_path), "pid": os.getpid()}), flush=True)
    stop.wait()
    if cloud is not None:
        cloud.stop()
    controller.stop()
    server.shutdown()
    server.server_close()
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
