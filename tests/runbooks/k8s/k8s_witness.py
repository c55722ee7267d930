"""kubectl and the sandbox API server's request log: the witnesses the Kubernetes runbook tests trust.

Assertions about the cluster are made with kubectl (a client independent of the kit), and about
writes with the sandbox API server's own request log.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from typing import Any

from runbook_sandbox.manager import SandboxInfo


def kubectl(info: SandboxInfo, *args: str) -> Any:
    """Run kubectl against the sandbox and return its parsed JSON output."""
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(info.kubeconfig), *args, "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return json.loads(out)


def requests_log(info: SandboxInfo) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{info.k8s_url}/_sandbox/requests", timeout=10) as response:
        return json.load(response)


def crashlooping_pods(info: SandboxInfo, namespace: str) -> list[str]:
    pods = kubectl(info, "get", "pods", "-n", namespace)["items"]
    return sorted(
        p["metadata"]["name"]
        for p in pods
        if any(
            (cs.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
            for cs in p["status"].get("containerStatuses", [])
        )
    )
