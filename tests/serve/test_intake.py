"""Group commit: deliveries admitted together share a transaction, and each is still decided alone."""

from __future__ import annotations

import asyncio

from runbook_kit.serve.intake import GroupCommit
from runbook_kit.serve.queue import Queue
from runbook_kit.serve.sources import AlertEvent, Delivery


def _delivery(i: int, status: str = "firing") -> Delivery:
    event = AlertEvent(
        source="alertmanager",
        status=status,
        labels={"alertname": "X", "i": str(i)},
        annotations={},
        starts_at="2026-11-30T10:00:00Z",
        fingerprint=f"fp{i}",
        delivery_id="g",
    )
    return Delivery(source="alertmanager", events=(event,))


def test_concurrent_deliveries_all_stored_and_deduplicated_within_a_batch(tmp_path):
    queue = Queue(str(tmp_path / "q.db"))
    writer = GroupCommit(queue, routes=[], storm_per_minute=20)

    async def storm():
        # 300 distinct alerts, each delivered twice at once (an HA pair), plus their resolutions
        tasks = [writer.admit(_delivery(i)) for i in range(300) for _ in range(2)]
        return await asyncio.gather(*tasks)

    try:
        results = asyncio.run(storm())
        assert sum(r.stored for r in results) == 300
        assert sum(r.duplicates for r in results) == 300
        assert queue.query("SELECT count(*) AS n FROM alerts")[0]["n"] == 300
        assert {r["decision"] for r in queue.query("SELECT decision FROM alerts")} == {"no route"}
        resolved = asyncio.run(writer.admit(_delivery(7, "resolved")))
        assert resolved.stored == 1
    finally:
        writer.close()
        queue.close()
