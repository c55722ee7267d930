"""What the clients say when nothing tells them where to go: NotConfigured, naming the setting."""

from __future__ import annotations

import os

import pytest

from runbook_kit import clients
from runbook_kit.errors import NotConfigured


@pytest.fixture
def bare_environment(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith(("AWS_", "PG", "KUBE", "RUNBOOK_")) or name in ("DATABASE_URL",):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "1")  # libpq: only a timeout, still nothing configured
    monkeypatch.chdir(tmp_path)
    clients.reset()
    yield
    clients.reset()


def test_aws_without_credentials_is_not_configured(bare_environment):
    with pytest.raises(NotConfigured, match=r"aws create rds client: not configured: no AWS credentials .*"
                                            r"AWS_PROFILE"):
        clients.aws("rds")


def test_kubernetes_without_a_kubeconfig_is_not_configured(bare_environment):
    with pytest.raises(NotConfigured, match=r"k8s load kubeconfig: not configured: .*set KUBECONFIG"):
        clients.core_v1()


def test_kubernetes_with_a_missing_context_is_not_configured(bare_environment, tmp_path, monkeypatch):
    config = tmp_path / "kubeconfig"
    config.write_text('{"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": [], '
                      '"current-context": ""}')
    monkeypatch.setenv("KUBECONFIG", str(config))
    clients.reset()
    with pytest.raises(NotConfigured, match="k8s load kubeconfig: not configured"):
        clients.core_v1(context="prod-eks")


def test_postgres_without_a_dsn_is_not_configured(bare_environment):
    with pytest.raises(NotConfigured, match="postgres connect: not configured: no database configured; "
                                            "set RUNBOOK_DSN"):
        clients.pg_connect()
