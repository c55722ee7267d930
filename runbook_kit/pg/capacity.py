"""Should max_connections go up, to what, and is there headroom left after the mitigation?

Raising the limit is the tempting fix and often the wrong one: with a leak, any new limit fills up
again; on PostgreSQL every connection costs memory (work_mem per sort, a process each), and on RDS
`max_connections` is a static parameter, so the new value needs a reboot that drops every session.
The recommendation therefore counts only the *legitimate* demand (connections minus sessions idle
beyond the threshold), sizes the limit so that demand uses `target_used_pct` of it, and says "do not
raise" — with the numbers — when stale sessions explain the pressure.
"""

from __future__ import annotations

import dataclasses
import html
import math
from typing import TYPE_CHECKING, Any

from runbook_kit import record
from runbook_kit.pg.snapshot import ConnectionSnapshot, connection_snapshot
from runbook_kit.pg.targets import IDLE_STATES

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Recommendation", "assess_max_connections", "verify_headroom"]

# RDS default: max_connections = LEAST({DBInstanceClassMemory/9531392}, 5000)
RDS_BYTES_PER_CONNECTION = 9531392


@dataclasses.dataclass(frozen=True)
class Recommendation:
    current: int
    used: int
    stale: int  # idle ≥ idle_minutes: demand a leak or an oversized pool creates, not traffic
    legitimate: int
    recommended: int
    raise_limit: bool
    why: str
    memory_cap: int | None = None

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([dataclasses.asdict(self)])

    def _repr_html_(self) -> str:
        verdict = f"raise to {self.recommended}" if self.raise_limit else "do not raise"
        return (f"<p><b>max_connections: {html.escape(verdict)}</b> — {html.escape(self.why)}</p>"
                + self.to_frame().to_html(index=False))


def assess_max_connections(
    snapshot: ConnectionSnapshot | None = None, *, dsn: str = "", idle_minutes: float = 10,
    target_used_pct: float = 70, instance_memory_bytes: int | None = None,
) -> Recommendation:
    """A max_connections value for the legitimate demand, or a reasoned "do not raise"."""
    snap = snapshot if snapshot is not None else connection_snapshot(dsn=dsn)
    clients = snap.clients
    stale = int((clients["state"].isin(IDLE_STATES) & (clients["state_age_min"] >= idle_minutes)).sum())
    legitimate = snap.used - stale
    reserved = snap.superuser_reserved + snap.reserved
    needed = math.ceil(legitimate * 100.0 / target_used_pct) + reserved
    needed = max(10, math.ceil(needed / 10) * 10)
    cap = min(instance_memory_bytes // RDS_BYTES_PER_CONNECTION, 5000) if instance_memory_bytes else None
    if stale and stale >= legitimate:
        why = (f"{stale} of {snap.used} connections have been idle for ≥ {idle_minutes:g} min: end them and "
               f"fix their application; the legitimate {legitimate} fit in {snap.available}")
        return Recommendation(snap.max_connections, snap.used, stale, legitimate, snap.max_connections, False,
                              why, cap)
    if needed <= snap.max_connections:
        pct = round(100.0 * legitimate / max(snap.available, 1))
        why = (f"legitimate demand {legitimate} uses {pct}% of "
               f"{snap.available} usable slots (target ≤ {target_used_pct:g}%)")
        return Recommendation(snap.max_connections, snap.used, stale, legitimate, snap.max_connections, False,
                              why, cap)
    recommended = min(needed, cap) if cap else needed
    why = (f"legitimate demand {legitimate} needs {needed} for {target_used_pct:g}% use "
           f"(+{reserved} reserved); consider a pooler (PgBouncer / RDS Proxy) before going higher")
    if cap and needed > cap:
        why += f"; capped at {cap} by instance memory (a larger instance class is the real fix)"
    return Recommendation(snap.max_connections, snap.used, stale, legitimate, recommended,
                          recommended > snap.max_connections, why, cap)


def verify_headroom(*, dsn: str = "", min_free_pct: float = 20) -> pd.DataFrame:
    """Measure the headroom now, record it as a finding (low severity when enough is free)."""
    snap = connection_snapshot(dsn=dsn)
    free_pct = round(100.0 - snap.used_pct, 1)
    ok = free_pct >= min_free_pct
    record.finding(
        f"Headroom {'restored' if ok else 'still low'}: {snap.used} of {snap.available} connections used, "
        f"{snap.free} free ({free_pct}%)", severity="info" if ok else "high",
        used=snap.used, available=snap.available, free=snap.free, free_pct=free_pct,
        max_connections=snap.max_connections, min_free_pct=min_free_pct,
    )
    frame: Any = snap.headroom()
    return frame
