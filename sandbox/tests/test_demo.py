"""The README's demo command, as a new user runs it: each scenario's record names the planted cause."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from runbook_kit import record

EXPECTED = {
    "crashloop": ("OOMKilled", "256Mi", "revision 3"),
    "connections": ("billing-worker", "idle in transaction"),
    "latency": ("storefront-checkout", "p99"),
}


def _demo_processes() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any("runbook-demo-" in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_demo_prints_a_record_that_names_the_planted_cause(scenario, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "runbook_kit.cli", "demo", scenario, "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.suffix == ".ipynb" and path.with_suffix(".html").is_file()
    nb = json.loads(path.read_text())
    assert nb["metadata"]["runbook_kit"]["status"] == "succeeded"
    causes = [e.title for e in record.read_entries(nb) if e.kind == "finding" and e.severity == "high"]
    assert any(all(word in title for word in EXPECTED[scenario]) for title in causes), causes
    assert not _demo_processes(), "the demo left sandbox processes running"
