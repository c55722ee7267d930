from __future__ import annotations

import pytest

from runbook_kit import ParameterError, settings


def test_defaults_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = settings.load({})
    assert s.store == "incidents" and s.connect_timeout == 5.0 and s.kube_context is None
    s = settings.load(
        {
            "RUNBOOK_STORE": "s3://b/p",
            "AWS_REGION": "eu-west-1",
            "RUNBOOK_DSN": "dbname=x",
            "RUNBOOK_CONNECT_TIMEOUT": "2",
        }
    )
    assert (s.store, s.aws_region, s.dsn, s.connect_timeout) == ("s3://b/p", "eu-west-1", "dbname=x", 2.0)


def test_config_file_is_overridden_by_environment(tmp_path):
    cfg = tmp_path / "runbook.yaml"
    cfg.write_text(
        "store: /records\naws: {region: us-west-2, profile: oncall}\n"
        "kubernetes: {context: prod}\ndatabases: {orders: 'host=orders dbname=orders'}\n"
        "timeouts: {connect: 3, read: 20}\n"
    )
    s = settings.load({"RUNBOOK_CONFIG": str(cfg), "AWS_REGION": "eu-central-1"})
    assert s.store == "/records" and s.aws_region == "eu-central-1" and s.aws_profile == "oncall"
    assert s.kube_context == "prod" and s.read_timeout == 20.0
    assert s.database("orders") == "host=orders dbname=orders" and s.database("dbname=y") == "dbname=y"


def test_bad_config_is_one_clear_error(tmp_path):
    with pytest.raises(ParameterError, match="not a file"):
        settings.load({"RUNBOOK_CONFIG": str(tmp_path / "missing.yaml")})
    bad = tmp_path / "bad.yaml"
    bad.write_text("store: [unclosed")
    with pytest.raises(ParameterError, match="not valid YAML"):
        settings.load({"RUNBOOK_CONFIG": str(bad)})
    with pytest.raises(ParameterError, match="number of seconds"):
        settings.load({"RUNBOOK_READ_TIMEOUT": "soon"})
