"""Secrets seeded into the environment, the parameters and cell outputs never reach a record."""

from __future__ import annotations

import json
from pathlib import Path

from runbook_kit.runner import run_notebook

ENV_SECRET = "s3cr3t-from-the-environment-9f8e7d"
PARAM_SECRET = "hunter2-passed-as-a-parameter"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DB_PASSWORD = "pg-pass-4c1d"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvbmNhbGwifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
SECRET_DATA = "c3VwZXJzZWNyZXQtYmFzZTY0"

LEAKY_CELL = f"""
import os, runbook_kit as rk
print(os.environ["PAYMENTS_API_TOKEN"])
print("password given:", db_password)
print("aws_access_key_id = {AWS_KEY_ID}")
print("{AWS_SECRET}")
print("postgresql://oncall:{DB_PASSWORD}@orders-db:5432/orders")
print("Authorization: Bearer {BEARER}")
display({{"kind": "Secret", "metadata": {{"name": "db"}}, "data": {{"password": "{SECRET_DATA}"}}}})
rk.finding("connected with " + os.environ["PAYMENTS_API_TOKEN"], dsn="postgresql://u:{DB_PASSWORD}@h/db")
"""


def test_secrets_are_absent_from_ipynb_html_and_incident_json(write_notebook, tmp_path):
    nb = write_notebook(
        "leaky",
        ("code", "db_password = ''  # a secret parameter\ndry_run = True\n", ["parameters"]),
        ("code", LEAKY_CELL),
    )
    store = tmp_path / "store"
    result = run_notebook(
        nb,
        parameters={"db_password": PARAM_SECRET},
        incident="INC-S",
        store=str(store),
        env={"PAYMENTS_API_TOKEN": ENV_SECRET},
    )
    assert result.status == "succeeded", result.failure
    files = [Path(result.notebook_path), Path(result.html_path), store / "INC-S" / "incident.json"]
    texts = {f.name: f.read_text() for f in files}
    # the HTML escapes quotes and slashes differently: check the raw and JSON-escaped forms
    for secret in (ENV_SECRET, PARAM_SECRET, AWS_KEY_ID, AWS_SECRET, DB_PASSWORD, BEARER, SECRET_DATA):
        for name, text in texts.items():
            assert secret not in text, f"{secret!r} leaked into {name}"
            assert json.dumps(secret)[1:-1] not in text, f"{secret!r} leaked (escaped) into {name}"
    outputs = json.loads(texts[files[0].name])["cells"][-1]["outputs"]
    assert any("REDACTED" in "".join(o.get("text", "")) for o in outputs)
    assert "orders-db:5432/orders" in texts[files[0].name]  # redaction keeps the useful part
