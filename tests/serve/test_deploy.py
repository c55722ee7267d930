"""The deployment files in deploy/ are what they claim: configurations that load, a valid Alertmanager
snippet, manifests that keep one queue owner and read credentials from a mounted Secret."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from serve_harness import ALERTMANAGER, ROOT

from runbook_kit.serve import config

DEPLOY = ROOT / "deploy"


def _load_with_token(text: str, tmp_path: Path, credential: str) -> config.ServeConfig:
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    path = tmp_path / "serve.yaml"
    path.write_text(text.replace(credential, str(token)))
    return config.load(path)


def test_example_configuration_loads_and_is_dry_run(tmp_path):
    text = (DEPLOY / "serve.example.yaml").read_text()
    cfg = _load_with_token(text, tmp_path, "/run/credentials/runbook-serve.service/alertmanager-token")
    assert [r.runbook for r in cfg.routes] == ["pod_crashloop"]
    assert not any(r.mutate for r in cfg.routes)


def test_kubernetes_manifests(tmp_path):
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "runbook-serve.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert {"Deployment", "Service", "Secret", "ConfigMap", "PersistentVolumeClaim"} <= set(kinds)
    deployment = kinds["Deployment"]["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"]["type"] == "Recreate"
    container = deployment["template"]["spec"]["containers"][0]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/runbook/credentials"]["readOnly"] is True
    served = kinds["ConfigMap"]["data"]["serve.yaml"]
    assert "REPLACE" not in served  # credentials live in the Secret, not the config
    cfg = _load_with_token(served, tmp_path, "/etc/runbook/credentials/alertmanager-token")
    assert cfg.routes and cfg.sources["alertmanager"]["bearer_token"] == "t0ken"
    assert kinds["Service"]["spec"]["ports"][0]["port"] == cfg.port


def test_alertmanager_snippet_is_valid():
    amtool = Path(ALERTMANAGER).with_name("amtool")
    assert amtool.exists(), f"{amtool} is missing: install the Debian package prometheus-alertmanager"
    result = subprocess.run(
        [str(amtool), "check-config", str(DEPLOY / "alertmanager" / "webhook_configs.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    snippet = yaml.safe_load((DEPLOY / "alertmanager" / "webhook_configs.yaml").read_text())
    [hook] = next(r for r in snippet["receivers"] if r["name"] == "runbook")["webhook_configs"]
    assert hook["url"].endswith("/webhook/alertmanager") and hook["send_resolved"] is True
    assert "credentials_file" in hook["http_config"]["authorization"]


def test_systemd_unit_reads_the_credential_from_a_file():
    unit = (DEPLOY / "systemd" / "runbook-serve.service").read_text()
    assert "LoadCredential=alertmanager-token:" in unit
    assert "--check-config" in unit and "KillMode=mixed" in unit


def test_prometheus_rules_are_valid():
    promtool = Path("/usr/bin/promtool")
    assert promtool.exists(), f"{promtool} is missing: install the Debian package prometheus"
    result = subprocess.run(
        [str(promtool), "check", "rules", str(DEPLOY / "prometheus" / "runbook-rules.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
