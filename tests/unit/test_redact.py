from __future__ import annotations

import pytest

from runbook_kit.redact import MASK, Redactor, is_secret_name, redact

R = Redactor(["my-known-secret-value"])


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        ("ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
        ("secret: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("aws_session_token=FwoGZXIvYXdzEJr//////////wEaDHNvbWV0b2tlbg", "FwoGZXIvYXdzEJr"),
        ("postgresql://app:p4ss-w0rd@db:5432/x", "p4ss-w0rd"),
        ("host=db password=p4ss-w0rd user=app", "p4ss-w0rd"),
        ("Authorization: Bearer abcdef0123456789abcdef", "abcdef0123456789abcdef"),
        ('{"client_secret": "zz-top-secret-zz"}', "zz-top-secret-zz"),
        ("DB_PASSWORD=opensesame", "opensesame"),
        ("X-Amz-Security-Token: IQoJb3JpZ2luX2VjEJr0bXlzZXNzaW9udG9rZW4", "IQoJb3JpZ2luX2Vj"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
        ("value my-known-secret-value here", "my-known-secret-value"),
    ],
)
def test_secrets_are_masked(text, secret):
    out = R.text(text)
    assert secret not in out and MASK in out


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",  # a git sha: lowercase hex, 40 chars
        "pods api-7d9f8b-x2x1 OOMKilled exit 137",
        "postgresql://orders-db:5432/orders",
        "NextToken pagination ended",
    ],
)
def test_ordinary_text_is_kept(text):
    assert R.text(text) == text


def test_structures_secret_keys_and_kubernetes_secrets():
    obj = {
        "kind": "Secret",
        "data": {"password": "c2VjcmV0"},
        "metadata": {"name": "db"},
        "outputs": [{"data": {"image/png": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"}}],
        "api_token": "abc123456",
    }
    out = R.value(obj)
    assert out["data"] == {"password": MASK} and out["api_token"] == MASK
    assert out["metadata"] == {"name": "db"}
    assert out["outputs"][0]["data"]["image/png"] == obj["outputs"][0]["data"]["image/png"]


def test_environment_values_with_secret_names(monkeypatch):
    monkeypatch.setenv("ORDERS_DB_PASSWORD", "Tr0ub4dor&3")
    monkeypatch.setenv("HOSTNAME", "not-a-secret-host")
    assert redact("pw is Tr0ub4dor&3 on not-a-secret-host") == f"pw is {MASK} on not-a-secret-host"


def test_names():
    assert all(map(is_secret_name, ["AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "db_password", "CREDENTIALS"]))
    assert not any(map(is_secret_name, ["HOME", "PWD", "namespace", "KEYMAP"]))


def test_idempotent():
    once = R.text("postgresql://a:b-secret@h/d AKIAIOSFODNN7EXAMPLE")
    assert R.text(once) == once
