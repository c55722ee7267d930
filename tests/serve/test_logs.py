"""The receiver's JSON log lines pass through the record's redactor: no credential, no DSN password."""

from __future__ import annotations

import json
import logging

from runbook_kit.redact import Redactor
from runbook_kit.serve.app import JsonFormatter


def _line(formatter: JsonFormatter, msg: str, **fields: object) -> dict:
    record = logging.LogRecord("runbook.serve", logging.WARNING, __file__, 1, msg, None, None)
    record.fields = fields
    return json.loads(formatter.format(record))


def test_a_log_line_masks_the_receivers_credentials_and_passwords_but_keeps_the_rest():
    token = "am-webhook-token-7f3a9c2e"
    formatter = JsonFormatter(Redactor.from_environment({}, extra={"alertmanager_bearer_token": token}))
    line = _line(formatter, "run failed: could not connect to postgresql://app:hunter2-x@db:5432/orders",
                 authorization=f"Bearer {token}", runbook="pod_crashloop", labels={"namespace": "payments"})
    text = json.dumps(line)
    assert token not in text and "hunter2-x" not in text
    assert line["runbook"] == "pod_crashloop" and line["labels"] == {"namespace": "payments"}
    assert line["msg"].startswith("run failed: could not connect to postgresql://app:")
    assert line["level"] == "warning"


def test_without_secrets_a_log_line_is_unchanged():
    formatter = JsonFormatter(Redactor([]))
    line = _line(formatter, "alert stored", source="alertmanager", episode="am:3f2a", status="firing")
    assert line == {"time": line["time"], "level": "warning", "msg": "alert stored", "source": "alertmanager",
                    "episode": "am:3f2a", "status": "firing"}
