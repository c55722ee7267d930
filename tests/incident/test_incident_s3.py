"""Incidents on S3: conditional puts (If-Match / If-None-Match) against a real moto server."""

from __future__ import annotations

import threading

import boto3
import pytest

from runbook_kit import incident as inc
from runbook_kit.errors import Conflict
from runbook_kit.store import open_store


@pytest.fixture
def s3_store(s3_endpoint, configured):
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="incident-records")
    return "s3://incident-records/prod"


def test_concurrent_writers_lose_no_event_on_s3(s3_store):
    inc.open_incident(title="t", severity="P1", incident_id="INC-S3", store=s3_store)

    def writer(n: int) -> None:
        for i in range(5):
            inc.add_event("INC-S3", "note", f"w{n}-{i}", store=s3_store)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    notes = {e.text for e in inc.timeline(inc.load("INC-S3", store=s3_store)) if e.kind == "note"}
    assert notes == {f"w{n}-{i}" for n in range(4) for i in range(5)}
    assert [i.id for i in inc.list_incidents(store=s3_store)] == ["INC-S3"]


def test_a_stale_etag_is_refused_by_the_server(s3_store):
    store = open_store(s3_store)
    store.update_json("INC-X/incident.json", lambda d: {"n": 1})
    with pytest.raises(Conflict):
        store.write("INC-X/incident.json", b"{}", IfMatch='"0123456789abcdef0123456789abcdef"')
    with pytest.raises(Conflict):
        store.write("INC-X/incident.json", b"{}", IfNoneMatch="*")
    assert store.update_json("INC-X/incident.json", lambda d: {"n": d["n"] + 1}) == {"n": 2}
