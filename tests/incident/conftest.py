"""Incidents in a temporary store; the sandbox's Slack / Statuspage / PagerDuty server on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from runbook_kit import clients, settings

ROUTING_KEY = "R0123456789abcdef0123456789abcde"  # 32 characters, as PagerDuty wants
SLACK_TOKEN = "xoxb-sandbox-token-0001"
CONTACTS = {
    "oncall": {"name": "Ana Ruiz", "slack": "U01ANA"},
    "team_lead": {"name": "Bo Chen", "slack": "U02BO"},
    "engineering_manager": {"name": "Cy Diaz", "slack": "U03CY"},
    "vp_engineering": {"name": "Di Egan", "slack": "U04DI"},
    "cto": {"name": "Ed Fox", "slack": "U05ED"},
}


def write_config(tmp_path: Path, **sections: object) -> Path:
    path = tmp_path / "runbook.yaml"
    path.write_text(yaml.safe_dump({"store": str(tmp_path / "incidents"), **sections}))
    return path


@pytest.fixture
def configured(tmp_path, monkeypatch):
    """A runbook.yaml with contacts and no comms: returns a function to rewrite it."""

    def configure(**sections: object) -> Path:
        path = write_config(tmp_path, contacts=CONTACTS, **sections)
        monkeypatch.setenv("RUNBOOK_CONFIG", str(path))
        monkeypatch.delenv("RUNBOOK_STORE", raising=False)
        settings.get.cache_clear()
        return path

    configure()
    yield configure
    settings.get.cache_clear()


@pytest.fixture
def store(tmp_path, configured) -> str:
    return str(tmp_path / "incidents")




@pytest.fixture
def comms(configured, comms_server, monkeypatch):
    """Slack, Statuspage and PagerDuty configured and pointed at the sandbox's server."""
    configured(comms={"slack": {"channel": "C0INCIDENTS"},
                      "statuspage": {"page_id": "pg01", "key_env": "STATUSPAGE_API_KEY"},
                      "pagerduty": {"routing_key_env": "PAGERDUTY_ROUTING_KEY"}})
    monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("STATUSPAGE_API_KEY", "sp-key-000111")
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
    for name in ("SLACK", "STATUSPAGE", "PAGERDUTY"):
        monkeypatch.setenv(f"RUNBOOK_{name}_API_URL", comms_server.url + ("/api/" if name == "SLACK" else ""))
    return comms_server


@pytest.fixture
def s3_endpoint(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        for k, v in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
                     "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        clients.reset()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        clients.reset()
