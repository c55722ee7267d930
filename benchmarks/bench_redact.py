"""Redaction throughput and scaling: `Redactor.value()` over a notebook full of cell outputs.

Claim under test: redaction is linear in its input (the runner redacts the whole notebook after every
cell, and the HTML export once more), and no slower than the pattern list it replaced.

The payload is a deterministic notebook of code cells whose outputs look like a runbook's: stream
text (log lines, a few secrets, stdout chunks interleaved with stderr, the odd long progress or
separator line and base64 blob), pandas DataFrames as text/plain and text/html, JSON results and a
coloured IPython traceback. Sizes are of the notebook as JSON.

* new redactor at 12.5, 25 and 50 MB: median of `--runs` runs each, MB/s, and the ratio of time per
  MB at 50 vs 12.5 MB (1.0 = linear);
* wall and CPU seconds are both printed: the redactor is single-threaded and CPU-bound, and on the
  shared 2-core machine its CPU time is the steadier figure (wall time also counts the turns of
  whatever else runs), so MB/s and the ratios are given on CPU time, with wall time beside them;
* the previous redactor (its `_PATTERNS` and `text()`, copied below from the commit before this
  benchmark) against the new one on a 5 MB payload without the long lines: the old patterns are
  quadratic in them (10,000 × "a-" took ~50 s), so with them it would not finish.

    .venv/bin/python benchmarks/bench_redact.py [--runs 3] [--sizes 12.5,25,50] [--baseline-mb 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any

from runbook_kit.redact import MASK, Redactor

# --- the previous redactor (git show 5279846:runbook_kit/redact.py), verbatim patterns ------------

_OLD_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|KEY|CREDENTIAL", re.IGNORECASE)
_OLD_NOT_SECRET_NAMES = {"KEYMAP", "KEYTIMEOUT"}
_OLD_NAME_CHARS = r"[A-Za-z0-9_.\-]*"
_OLD_SECRET_WORD = r"(?:secret|token|password|passwd|api[_-]?key|access[_-]?key|private[_-]?key|credential)"
_OLD_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S), MASK),
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b"), MASK),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]{8,}=*"), r"\1 " + MASK),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@'\"]*:)([^\s@'\"/]+)(@)"), r"\1" + MASK + r"\3"),
    (
        re.compile(
            r"(?i)(\b" + _OLD_NAME_CHARS + _OLD_SECRET_WORD + _OLD_NAME_CHARS + r"""["']?\s*[:=]\s*["']?)"""
            r"""(?!\*\*\*REDACTED)([^\s"',;&}]{4,})"""
        ),
        r"\1" + MASK,
    ),
    (re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+=]*[A-Z])(?=[A-Za-z0-9/+=]*[a-z])"
                r"(?=[A-Za-z0-9/+=]*[0-9/+])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"), MASK),
    (re.compile(r"\b(?:FwoGZXIvYXdz|IQoJb3JpZ2lu|FQoGZXIvYXdz)[A-Za-z0-9/+=]{20,}"), MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), MASK),
]


def _old_is_secret_name(name: str) -> bool:
    return bool(_OLD_SECRET_NAME.search(name)) and name.upper() not in _OLD_NOT_SECRET_NAMES


class OldRedactor:
    def __init__(self, known_values: Iterable[str] = ()) -> None:
        values = {v for v in known_values if isinstance(v, str) and len(v) >= 6}
        self._known = sorted(values, key=len, reverse=True)
        self._known_re = re.compile("|".join(re.escape(v) for v in self._known)) if self._known else None

    def text(self, text: str) -> str:
        if not text:
            return text
        if self._known_re is not None:
            text = self._known_re.sub(MASK, text)
        for pattern, replacement in _OLD_PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def value(self, obj: Any, *, _key: str = "") -> Any:
        if isinstance(obj, str):
            return MASK if _key and _old_is_secret_name(_key) and obj and obj != MASK else self.text(obj)
        if isinstance(obj, Mapping):
            if obj.get("kind") == "Secret":
                obj = {k: ({kk: MASK for kk in v} if k in ("data", "stringData") and isinstance(v, Mapping)
                           else v) for k, v in obj.items()}
            out = {}
            for k, v in obj.items():
                if isinstance(k, str) and k.startswith("image/"):
                    out[k] = v
                else:
                    out[k] = self.value(v, _key=k if isinstance(k, str) else "")
            return out
        if isinstance(obj, list | tuple):
            return type(obj)(self.value(v) for v in obj)
        return obj


# --- the payload ---------------------------------------------------------------------------------

KNOWN = {"ORDERS_DB_PASSWORD": "Tr0ub4dor&3-orders", "AWS_SECRET_ACCESS_KEY": "testing", "PGPASSWORD": "pw1",
         "PAYMENTS_API_TOKEN": "s3cr3t-from-the-environment-9f8e7d"}
SERVICES = ["orders-api", "payments", "checkout", "inventory", "gateway", "auth"]
PATHS = ["/v1/orders", "/v1/orders/{id}", "/healthz", "/v1/payments", "/v1/cart", "/metrics"]


def _log_lines(rng: random.Random, n: int, *, long_lines: bool) -> list[str]:
    lines = []
    for i in range(n):
        svc = rng.choice(SERVICES)
        level = rng.choice(["INFO", "INFO", "INFO", "WARN", "ERROR"])
        line = (f"2026-11-29T01:{i % 60:02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z "
                f"{level} {svc}-7d9f8b-{rng.randrange(10**4):04d} "
                f"request_id={rng.getrandbits(64):016x} method={rng.choice(['GET', 'POST'])} "
                f"path={rng.choice(PATHS)} status={rng.choice([200, 200, 201, 404, 500, 503])} "
                f"duration_ms={rng.randrange(1, 3000)} user_agent=\"kube-probe/1.29\"")
        r = rng.random()
        if r < 0.01:
            line += f" dsn=postgresql://orders:{KNOWN['ORDERS_DB_PASSWORD']}@orders-db:5432/orders"
        elif r < 0.02:
            line += " Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvbmNhbGwifQ.c2lnbmF0dXJlLXNpZ25h"
        elif r < 0.025:
            line += " aws_access_key_id=AKIAIOSFODNN7EXAMPLE password=hunter22 PGPASSWORD=pw1"
        elif r < 0.03:
            line = f"\x1b[0;31m{line}\x1b[0m token=\x1b[1m{KNOWN['PAYMENTS_API_TOKEN']}\x1b[0m"
        lines.append(line + "\n")
        if long_lines and rng.random() < 0.004:  # progress bars, separators, a base64 blob
            lines.append(rng.choice(["a-" * 2000, "=" * 4000, "#" * 3000 + "| 100%",
                                     "".join(rng.choice("ABCDEFabcdef0123456789+/") for _ in range(4000))])
                         + "\n")
    return lines


def _stream_outputs(rng: random.Random, *, long_lines: bool) -> list[dict[str, Any]]:
    lines = _log_lines(rng, rng.randrange(80, 160), long_lines=long_lines)
    outputs: list[dict[str, Any]] = []
    i = 0
    while i < len(lines):
        k = rng.randrange(5, 40)
        name = "stderr" if rng.random() < 0.2 else "stdout"
        outputs.append({"output_type": "stream", "name": name, "text": "".join(lines[i:i + k])})
        i += k
    return outputs


def _dataframe(rng: random.Random) -> dict[str, Any]:
    rows = [(f"user{rng.randrange(1000)}", f"pw-{rng.getrandbits(40):010x}", rng.randrange(1, 65535),
             rng.choice(["primary", "replica", "a longer note about this row"]))
            for _ in range(rng.randrange(20, 60))]
    head = ("<table border=\"1\" class=\"dataframe\">\n  <thead>\n    <tr style=\"text-align: right;\">\n"
            "      <th></th>\n      <th>user</th>\n      <th>password</th>\n      <th>port</th>\n"
            "      <th>note</th>\n    </tr>\n  </thead>\n  <tbody>\n")
    body = "".join(f"    <tr>\n      <th>{i}</th>\n      <td>{u}</td>\n      <td>{p}</td>\n"
                   f"      <td>{port}</td>\n      <td>{n}</td>\n    </tr>\n"
                   for i, (u, p, port, n) in enumerate(rows))
    text = f"{'':>4}{'user':>9}{'password':>15}{'port':>7}{'note':>30}\n" + "".join(
        f"{i:<4}{u:>9}{p:>15}{port:>7}{n:>30}\n" for i, (u, p, port, n) in enumerate(rows))
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/html": head + body + "  </tbody>\n</table>", "text/plain": text}}


def _json_result(rng: random.Random) -> dict[str, Any]:
    pods = [{"name": f"{rng.choice(SERVICES)}-7d9f8b-{rng.randrange(10**5)}", "namespace": "prod",
             "phase": rng.choice(["Running", "Pending", "CrashLoopBackOff"]), "restarts": rng.randrange(20),
             "node": f"ip-10-0-{rng.randrange(255)}-{rng.randrange(255)}.ec2.internal",
             "labels": {"app": rng.choice(SERVICES), "tier": "backend"},
             "env": {"LOG_LEVEL": "info", "API_TOKEN": f"tok-{rng.getrandbits(64):016x}"}}
            for _ in range(rng.randrange(10, 40))]
    return {"output_type": "execute_result", "execution_count": 1, "metadata": {},
            "data": {"application/json": {"pods": pods, "NextToken": "eyJuZXh0IjoxfQ"},
                     "text/plain": json.dumps(pods)[:2000]}}


def _traceback() -> dict[str, Any]:
    return {"output_type": "error", "ename": "OperationalError", "evalue": "connection failed",
            "traceback": ["\x1b[0;31m---------------------------------------------------------------\x1b[0m",
                          "\x1b[0;31mOperationalError\x1b[0m Traceback (most recent call last)",
                          "Cell \x1b[0;32mIn[3], line 2\x1b[0m\n\x1b[1;32m      1\x1b[0m dsn "
                          "\x1b[38;5;241m=\x1b[39m \x1b[38;5;124m\"host=db password=\x1b[0m"
                          "\x1b[38;5;124m'my pa ss;w&rd' user=x\"\x1b[39m",
                          "\x1b[0;31mOperationalError\x1b[0m: connection to server failed"]}


def make_notebook(mb: float, *, seed: int = 1, long_lines: bool = True) -> dict[str, Any]:
    rng = random.Random(seed)
    cells: list[dict[str, Any]] = []
    size, target = 0, int(mb * 1_000_000)
    while size < target:
        outputs = _stream_outputs(rng, long_lines=long_lines)
        r = rng.random()
        if r < 0.35:
            outputs.append(_dataframe(rng))
        elif r < 0.7:
            outputs.append(_json_result(rng))
        elif r < 0.8:
            outputs.append(_traceback())
        cell = {"cell_type": "code", "id": f"c{len(cells)}", "metadata": {}, "execution_count": len(cells),
                "source": "df = rk.pg.connection_snapshot()\nprint(df)", "outputs": outputs}
        cells.append(cell)
        size += len(json.dumps(cell))
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}


# --- measuring -----------------------------------------------------------------------------------

def timed(fn: Any, nb: dict[str, Any], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each run. The redactor is single-threaded and CPU-bound: on a shared
    machine its CPU time is the steadier figure (wall time also counts other processes' turns)."""
    wall, cpu = [], []
    for _ in range(runs):
        gc.collect()
        w, c = time.perf_counter(), time.process_time()
        fn(nb)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="12.5,25,50", help="payload sizes in MB (notebook JSON)")
    parser.add_argument("--baseline-mb", type=float, default=5.0)
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    new = Redactor.from_environment(KNOWN)
    med = statistics.median

    print(f"Redactor.value() over a notebook of cell outputs; median of {args.runs} runs "
          f"(load average {os.getloadavg()[0]:.1f} at start)\n")
    print(f"{'payload MB':>10} {'wall s':>8} {'cpu s':>8} {'min cpu s':>10} {'max cpu s':>10} "
          f"{'MB/s cpu':>9} {'MB/s wall':>10}")
    per_mb: dict[float, float] = {}
    for mb in sizes:
        nb = make_notebook(mb)
        real = len(json.dumps(nb)) / 1e6
        wall, cpu = timed(new.value, nb, args.runs)
        per_mb[mb] = med(cpu) / real
        print(f"{real:>10.1f} {med(wall):>8.2f} {med(cpu):>8.2f} {min(cpu):>10.2f} {max(cpu):>10.2f} "
              f"{real / med(cpu):>9.2f} {real / med(wall):>10.2f}", flush=True)
        del nb
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        print(f"\nCPU time per MB at {hi:g} MB / at {lo:g} MB: {per_mb[hi] / per_mb[lo]:.2f} (1.00 = linear)")

    nb = make_notebook(args.baseline_mb, seed=2, long_lines=False)
    real = len(json.dumps(nb)) / 1e6
    old = OldRedactor([v for v in KNOWN.values()])
    print(f"\nprevious vs new redactor, {real:.1f} MB payload without long lines; "
          f"median of {args.runs} runs\n")
    print(f"{'redactor':<10} {'wall s':>8} {'cpu s':>8} {'MB/s cpu':>9} {'× new (cpu)':>12} "
          f"{'× new (wall)':>13}")
    rows = [("new", *timed(new.value, nb, args.runs)), ("previous", *timed(old.value, nb, args.runs))]
    base_wall, base_cpu = med(rows[0][1]), med(rows[0][2])
    for name, wall, cpu in rows:
        print(f"{name:<10} {med(wall):>8.2f} {med(cpu):>8.2f} {real / med(cpu):>9.2f} "
              f"{med(cpu) / base_cpu:>12.2f} {med(wall) / base_wall:>13.2f}", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
