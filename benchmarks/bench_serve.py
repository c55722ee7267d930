"""`runbook serve`: an alert storm (time to answer the sender, nothing lost) and alert → finished record.

    .venv/bin/python benchmarks/bench_serve.py [--alerts 1000] [--seconds 60] [--records 7]

Storm: `--alerts` distinct Alertmanager notifications (one alert each) paced evenly over `--seconds`
by 4 keep-alive senders, against a real `runbook serve` whose route matches them (so the storm
breaker, routing and a few diagnosis runs happen during the storm, as they would). Time to answer is
measured at the sender; afterwards the queue must hold every alert. Beside it, in the same run, the
same rate of `GET /healthz` for a quarter of the alerts (the HTTP stack without storing): the cost
of storing durably.

Record: alert posted → run finished (record written) for `pod_crashloop` on the sandbox's crashloop
scenario, one alert at a time (`--records`, default 7, each path): with warm kernels (the pool full
again before each alert, its steady state), with `warm_kernels: 0` (each run a cold `runbook run`
child), beside a cold `runbook run pod_crashloop` and the `papermill` CLI on the same notebook and
sandbox; also the resident memory of one ready standby (its runner and its warmed kernel).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def start_server(
    folder: Path, routes: list[dict], env: dict[str, str], **extra
) -> tuple[subprocess.Popen, int]:
    port = free_port()
    (folder / "token").write_text(TOKEN)
    config = {
        "listen": f"127.0.0.1:{port}",
        "queue": str(folder / "queue.db"),
        "store": str(folder / "incidents"),
        "sources": {"alertmanager": {"bearer_token": {"file": str(folder / "token")}}},
        "routes": routes,
        **extra,
    }
    (folder / "serve.yaml").write_text(json.dumps(config))
    log = open(folder / "serve.log", "wb")  # noqa: SIM115 - kept open for the server's life
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook_kit.cli", "serve", "-c", str(folder / "serve.yaml")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=folder,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"runbook serve did not start: {(folder / 'serve.log').read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def paced(port: int, n: int, seconds: float, request) -> tuple[list[float], list[int]]:
    """n requests evenly spread over `seconds` by 4 keep-alive senders; (latencies in send order, codes)."""
    latencies: list[float] = [0.0] * n
    codes: list[int] = []
    lock = threading.Lock()
    t0 = time.perf_counter() + 0.2
    interval = seconds / n

    def sender(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(k, n, 4):
            delay = t0 + i * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            method, path, body, headers = request(i)
            start = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - start
            with lock:
                latencies[i] = elapsed
                codes.append(response.status)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, codes


def storm(args: argparse.Namespace, tmp: Path, env: dict[str, str]) -> None:
    folder = tmp / "storm"
    (folder / "runbooks").mkdir(parents=True)
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {
                "cell_type": "code",
                "id": "p",
                "metadata": {"tags": ["parameters"]},
                "execution_count": None,
                "outputs": [],
                "source": 'target = ""\ndry_run = True\n',
            },
            {
                "cell_type": "code",
                "id": "c",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": "print(target)",
            },
        ],
    }
    (folder / "runbooks" / "probe.ipynb").write_text(json.dumps(nb))
    route = {
        "name": "storm",
        "match": {"alertname": "Storm"},
        "runbook": "probe",
        "parameters": {"target": "{labels.instance}"},
    }
    proc, port = start_server(folder, [route], {**env, "RUNBOOK_PATH": str(folder / "runbooks")})
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}

    def alert(i: int):
        body = json.dumps(
            {
                "version": "4",
                "groupKey": f"g{i}",
                "status": "firing",
                "truncatedAlerts": 0,
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "Storm", "instance": f"node-{i}"},
                        "annotations": {},
                        "startsAt": "2026-11-30T10:00:00Z",
                        "fingerprint": f"{i:016x}",
                    }
                ],
            }
        )
        return "POST", "/webhook/alertmanager", body, headers

    try:
        lat, codes = paced(port, args.alerts, args.seconds, alert)
        # the same rate for a quarter of the time: the loop stays within a minute and a quarter
        base_n = max(1, args.alerts // 4)
        base, _ = paced(
            port, base_n, args.seconds * base_n / args.alerts, lambda i: ("GET", "/healthz", None, {})
        )
    finally:
        stop(proc)
    db = sqlite3.connect(folder / "queue.db")
    stored = db.execute("SELECT count(*) FROM alerts").fetchone()[0]
    runs = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    ms = [x * 1000 for x in lat]
    base_ms = [x * 1000 for x in base]
    print(f"storm: {args.alerts} alerts over {args.seconds:g} s, 4 keep-alive senders")
    print(
        f"  answers: {codes.count(202)} × 202, other: {len([c for c in codes if c != 202])}; "
        f"stored in the queue: {stored} (lost: {args.alerts - stored}); runs queued: {runs} (storm breaker)"
    )
    print(
        f"  POST /webhook/alertmanager  p50 {pct(ms, 50):.1f} ms  p99 {pct(ms, 99):.1f} ms  "
        f"max {max(ms):.1f} ms"
    )
    print(
        f"  GET /healthz (same pacing)   p50 {pct(base_ms, 50):.1f} ms  p99 {pct(base_ms, 99):.1f} ms  "
        f"max {max(base_ms):.1f} ms"
    )
    print(f"  p99 ratio store/healthz: {pct(ms, 99) / pct(base_ms, 99):.2f}")
    first = ms[: len(ms) // 6]  # the first sixth: the storm breaker's runs start their kernels
    rest = ms[len(ms) // 6 :]
    print(
        f"  p99 first {args.seconds / 6:.0f} s (runs starting): {pct(first, 99):.1f} ms; "
        f"p99 after: {pct(rest, 99):.1f} ms"
    )


def _alert(i: int, ns: str, dep: str) -> str:
    return json.dumps(
        {
            "version": "4",
            "groupKey": "g",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": "KubePodCrashLooping",
                        "namespace": ns,
                        "deployment": dep,
                        "run": str(i),
                    },
                    "annotations": {},
                    "startsAt": "2026-11-30T10:00:00Z",
                    "fingerprint": f"rec{i}",
                }
            ],
        }
    )


def _log_lines(folder: Path, msg: str) -> list[dict]:
    out = []
    for line in (folder / "serve.log").read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if data.get("msg") == msg:
                out.append(data)
    return out


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (a standby and its kernel), in MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total / 1024


def served(
    folder: Path, env: dict[str, str], n: int, ns: str, dep: str, warm: int
) -> tuple[list[float], list[str], list[float]]:
    """n alerts one at a time, POST → record written; (seconds, how each ran, RSS per ready standby MB)."""
    folder.mkdir()
    route = {
        "name": "crashloop",
        "match": {"alertname": "KubePodCrashLooping"},
        "runbook": "pod_crashloop",
        "parameters": {"namespace": "{labels.namespace}", "deployment": "{labels.deployment}"},
    }
    seconds, rss = [], []
    proc, port = start_server(folder, [route], env, concurrency=1, warm_kernels=warm)
    try:
        db = sqlite3.connect(folder / "queue.db")
        for i in range(n):
            # steady state: the pool is full again before the next alert (a warm pool's normal state)
            deadline = time.monotonic() + 120
            while warm and len(_log_lines(folder, "warm standby ready")) < warm + i:
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"the standbys did not get ready: {(folder / 'serve.log').read_text()[-3000:]}"
                    )
                time.sleep(0.1)
            if warm and i == 0:
                rss = [_rss_mb(int(x["pid"])) for x in _log_lines(folder, "warm standby ready")]
            time.sleep(0.5)  # let the last replacement's start-up CPU settle
            start = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request(
                "POST",
                "/webhook/alertmanager",
                body=_alert(i, ns, dep),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
            )
            run_id = json.loads(conn.getresponse().read())["runs"][0]
            while True:
                row = db.execute("SELECT state FROM runs WHERE id = ?", (run_id,)).fetchone()
                if row and row[0] not in ("queued", "leased", "running"):
                    break
                time.sleep(0.01)
            seconds.append(time.perf_counter() - start)
            assert row[0] == "succeeded", row
    finally:
        stop(proc)
    how = [x.get("how", "?") for x in _log_lines(folder, "run started")]
    return seconds, how, rss


def records(args: argparse.Namespace, tmp: Path, env: dict[str, str]) -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "sandbox")]
    from runbook_kit import catalog
    from runbook_sandbox import manager
    from runbook_sandbox import timeline as tl

    state = tmp / "sandbox"
    info = manager.up("crashloop", state_dir=state, parts=("k8s",))
    env = {**env, **info.env}
    folder = tmp / "records"
    folder.mkdir()
    ns, dep = tl.CRASHLOOP_NAMESPACE, tl.CRASHLOOP_DEPLOYMENT
    cold_s, pm_s = [], []
    try:
        warm_s, warm_how, rss = served(folder / "warm", env, args.records, ns, dep, warm=2)
        child_s, child_how, _ = served(folder / "cold", env, args.records, ns, dep, warm=0)
        book = catalog.find("pod_crashloop").path
        for i in range(args.records):
            start = time.perf_counter()
            subprocess.run(
                [
                    str(BIN / "runbook"),
                    "run",
                    "pod_crashloop",
                    "-p",
                    "namespace",
                    ns,
                    "-p",
                    "deployment",
                    dep,
                    "--incident",
                    f"cold-{i}",
                    "--store",
                    str(folder / "cold-run"),
                ],
                check=True,
                capture_output=True,
                env=env,
            )
            cold_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            subprocess.run(
                [
                    str(BIN / "papermill"),
                    str(book),
                    str(folder / f"pm-{i}.ipynb"),
                    "-p",
                    "namespace",
                    ns,
                    "-p",
                    "deployment",
                    dep,
                ],
                check=True,
                capture_output=True,
                env=env,
            )
            pm_s.append(time.perf_counter() - start)
    finally:
        manager.down(state_dir=state)
    load = os.getloadavg()[0]
    med = statistics.median
    print(
        f"alert → finished record, pod_crashloop on the sandbox ({args.records} runs each, load {load:.1f}):"
    )
    print(f"  {'path':<44} {'p50 s':>6} {'p90 s':>6}   all")
    for name, xs in (
        ("runbook serve, warm kernels (POST → record)", warm_s),
        ("runbook serve, warm_kernels: 0 (cold child)", child_s),
        ("runbook run (cold)", cold_s),
        ("papermill CLI", pm_s),
    ):
        print(f"  {name:<44} {med(xs):>6.2f} {pct(xs, 90):>6.2f}   {', '.join(f'{x:.2f}' for x in xs)}")
    print(f"  warm runs executed as: {', '.join(warm_how)}; cold: {', '.join(child_how)}")
    print(f"  RSS per ready standby (runner + warmed kernel): {', '.join(f'{x:.0f}' for x in rss)} MB")
    print(
        f"  warm / cold child: {med(warm_s) / med(child_s):.2f}; "
        f"warm / runbook run: {med(warm_s) / med(cold_s):.2f}; "
        f"warm / papermill: {med(warm_s) / med(pm_s):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--records", type=int, default=7)
    parser.add_argument("--only", choices=("storm", "records"))
    args = parser.parse_args()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "sandbox"), os.environ.get("PYTHONPATH", "")]),
    }
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        if args.only in (None, "storm"):
            storm(args, Path(tmp), env)
        if args.only in (None, "records"):
            records(args, Path(tmp), env)


if __name__ == "__main__":
    main()
