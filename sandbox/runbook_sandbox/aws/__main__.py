"""`python -m runbook_sandbox.aws --state-dir DIR [--port 0] [--scenario S ...] [--anchor ISO]`

Serves the gap-filled moto app on 127.0.0.1, seeds the scenarios, then prints one JSON line
`{"url": ..., "pid": ...}` on stdout: the manager's signal that the part is ready. SIGTERM stops the
server promptly (the process exits 0).
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runbook_sandbox.aws")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        help="crashloop, connections, latency, node or all (repeatable)",
    )
    parser.add_argument("--anchor", default=None, help="ISO time the scenarios are placed relative to")
    args = parser.parse_args(argv)
    scenarios = set(timeline.SCENARIOS) if "all" in args.scenario else set(args.scenario)
    unknown = scenarios - set(timeline.SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    anchor = dt.datetime.fromisoformat(args.anchor) if args.anchor else dt.datetime.now(dt.UTC)
    if anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=dt.UTC)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=args.state_dir / "aws.log", level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    from werkzeug.serving import make_server

    from runbook_sandbox.aws.app import build_app
    from runbook_sandbox.aws.seed import seed

    app = build_app()
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    (args.state_dir / "url.tmp").write_text(url)  # for the Kubernetes part, which starts in parallel
    (args.state_dir / "url.tmp").replace(args.state_dir / "url")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        seed(
            url,
            scenarios=scenarios,
            anchor=anchor,
            trail=app.trail,
            fleet=app.fleet,
            findings=app.guardduty,
            stacks=app.stacks,
        )
    except Exception as exc:
        print(json.dumps({"error": f"seeding failed: {type(exc).__name__}: {exc}"}), flush=True)
        server.shutdown()
        return 1
    print(json.dumps({"url": url, "pid": os.getpid()}), flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
