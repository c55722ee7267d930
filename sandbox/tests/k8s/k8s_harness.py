"""Start and stop the sandbox's Kubernetes server as a subprocess (used by conftest and the tests)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Sandbox:
    url: str
    kubeconfig: str
    pid: int
    state_dir: Path
    process: subprocess.Popen[str]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def api_client(self) -> Any:
        from kubernetes import config

        return config.new_client_from_config(config_file=self.kubeconfig, context="runbook-sandbox")

    def requests(self) -> list[dict[str, Any]]:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/_sandbox/requests", timeout=5) as response:
            return json.load(response)


def start(state_dir: Path, *args: str) -> Sandbox:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runbook_sandbox.k8s",
            "--state-dir",
            str(state_dir),
            "--port",
            "0",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=5)
        raise RuntimeError(f"k8s sandbox did not start: {process.stderr.read() if process.stderr else ''}")
    ready = json.loads(line)
    return Sandbox(ready["url"], ready["kubeconfig"], ready["pid"], state_dir, process)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop(sandbox: Sandbox) -> int:
    """SIGTERM by PID; returns the exit code (kills only if it does not exit within 5 s)."""
    if sandbox.process.poll() is None:
        os.kill(sandbox.pid, signal.SIGTERM)
        try:
            sandbox.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(sandbox.pid, signal.SIGKILL)
            sandbox.process.wait(timeout=5)
    for stream in (sandbox.process.stdout, sandbox.process.stderr):
        if stream:
            stream.close()
    return sandbox.process.returncode
