"""Why the connections ran out: a leak, a limit too low for the fleet, blocking, or a traffic surge.

The four causes call for opposite mitigations — terminating a leaking application's stale sessions
is right for a leak and wrong for a surge; raising max_connections helps a fleet that outgrew the
limit and only delays a leak — so the runbook must name the cause *with its evidence* before it
suggests a change. `assess_connections()` is pure (a snapshot in, diagnoses out) so each rule is
unit-tested on plain data; `diagnose_connections()` records each diagnosis as a finding.

Rules, from one snapshot:
* leak: one application holds ≥ `leak_min_sessions` sessions *idle in transaction* for at least
  `idle_minutes`, and they are ≥ `leak_min_share_pct` of the used connections (a transaction nobody
  finishes holds its connection, its locks and its snapshot: always a bug);
* idle pool: the same with plain *idle* sessions — a connection pool keeps more connections open
  than its traffic needs (not a bug, but slots the others cannot use);
* blocking: a root blocker (waiting for nobody) holds locks other sessions wait for;
* stale sessions: the pressure is made of sessions idle beyond the threshold, spread over several
  applications (no single leak) — without them the pool would not be under pressure;
* surge: the *legitimate* demand (used minus stale sessions) alone is under pressure, and most
  connections are young (opened within `surge_minutes`) and mostly active: clients opened them
  just now to serve traffic;
* limit too low: the legitimate demand alone is under pressure, without a surge — the fleet uses
  them all.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from runbook_kit import record
from runbook_kit.errors import Forbidden
from runbook_kit.pg.activity import blocking_chains
from runbook_kit.pg.snapshot import ConnectionSnapshot, connection_snapshot
from runbook_kit.pg.targets import IDLE_STATES

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["CAUSES", "ConnectionDiagnosis", "assess_connections", "diagnose_connections"]

CAUSES = ("leak", "idle_pool", "blocking", "stale_sessions", "surge", "limit_too_low", "healthy", "partial")


@dataclasses.dataclass(frozen=True)
class ConnectionDiagnosis:
    cause: str
    title: str
    severity: str
    evidence: dict[str, Any]


def _stale(snapshot: ConnectionSnapshot, idle_minutes: float) -> pd.DataFrame:
    c = snapshot.clients
    return c[c["state"].isin(IDLE_STATES) & (c["state_age_min"] >= idle_minutes)]


def _leaks(snapshot: ConnectionSnapshot, *, idle_minutes: float, min_sessions: int, min_share_pct: float,
           pressure: bool) -> list[ConnectionDiagnosis]:
    """Per application: stale idle-in-transaction sessions are a leak; stale plain idle ones an idle pool."""
    clients, stale = snapshot.clients, _stale(snapshot, idle_minutes)
    names = clients["application_name"].fillna("").replace("", "(none)")
    out = []
    for app, group in stale.groupby(stale["application_name"].fillna("").replace("", "(none)")):
        in_xact = group[group["state"].str.startswith("idle in transaction")]
        leak = len(in_xact) >= min_sessions and 100.0 * len(in_xact) / max(snapshot.used, 1) >= min_share_pct
        pool = len(group) >= min_sessions and 100.0 * len(group) / max(snapshot.used, 1) >= min_share_pct
        if not (leak or pool):
            continue
        sessions = in_xact if leak else group
        total = int((names == app).sum())
        oldest = round(float(sessions["state_age_min"].max()), 1)
        evidence = {
            "application": app, "connections": total, "stale_sessions": len(sessions),
            "idle_in_transaction": len(in_xact), "oldest_idle_min": oldest,
            "oldest_xact_min": _round(sessions["xact_age_min"].max()),
            "share_of_used_pct": round(100.0 * len(sessions) / max(snapshot.used, 1), 1),
            "clients": sorted(map(str, sessions["client_addr"].dropna().unique()))[:10],
            "users": sorted(map(str, sessions["usename"].dropna().unique())),
            "pids": sorted(int(p) for p in sessions["pid"])[:50],
        }
        if leak:
            title = (f"Connection leak: {app} holds {total} connections ({len(in_xact)} idle in transaction "
                     f"for ≥ {idle_minutes:g} min, oldest {oldest} min)")
            out.append(ConnectionDiagnosis("leak", title, "high" if pressure else "medium", evidence))
        else:
            title = (f"Idle pool: {app} keeps {len(group)} of its {total} connections idle for ≥ "
                     f"{idle_minutes:g} min (oldest {oldest} min): its pool is larger than its traffic")
            out.append(ConnectionDiagnosis("idle_pool", title, "medium", evidence))
    return sorted(out, key=lambda d: (d.cause != "leak", -int(d.evidence["stale_sessions"])))


def _round(value: Any) -> float | None:
    return None if value is None or value != value else round(float(value), 1)


def _blocking(snapshot: ConnectionSnapshot, *, pressure: bool) -> list[ConnectionDiagnosis]:
    chains = blocking_chains(snapshot)
    roots = chains[chains["root"]] if len(chains) else chains
    out = []
    for _, row in roots.iterrows():
        blocked = int(row["blocks_total"])
        out.append(ConnectionDiagnosis(
            "blocking",
            f"Blocking: pid {row['blocker_pid']} ({row['application_name'] or '?'}, {row['state'] or '?'}) "
            f"blocks {blocked} sessions",
            "high" if pressure or blocked >= 5 else "medium",
            {"blocker_pid": int(row["blocker_pid"]), "application": row["application_name"],
             "state": row["state"], "xact_age_min": _round(row["xact_age_min"]), "blocks_total": blocked,
             "blocks_directly": list(row["blocks_directly"]), "query": row["query"]},
        ))
    return out


def assess_connections(
    snapshot: ConnectionSnapshot, *, idle_minutes: float = 10, surge_minutes: float = 5,
    pressure_pct: float = 80, leak_min_sessions: int = 5, leak_min_share_pct: float = 20,
    surge_share_pct: float = 50,
) -> list[ConnectionDiagnosis]:
    """The causes the snapshot shows evidence for, most actionable first (pure: records nothing)."""
    if snapshot.hidden:
        hidden = f"{snapshot.hidden} of {snapshot.used} sessions are hidden from {snapshot.user}"
        title = f"Cannot diagnose: {hidden}"
        return [ConnectionDiagnosis("partial", title, "high",
                                    {"hidden_sessions": snapshot.hidden, "user": snapshot.user})]
    pressure = snapshot.used_pct >= pressure_pct
    usage = {"used": snapshot.used, "available": snapshot.available, "used_pct": snapshot.used_pct,
             "max_connections": snapshot.max_connections}
    leaks = _leaks(snapshot, idle_minutes=idle_minutes, min_sessions=leak_min_sessions,
                   min_share_pct=leak_min_share_pct, pressure=pressure)
    found = [dataclasses.replace(d, evidence={**d.evidence, **usage}) for d in leaks]
    found += _blocking(snapshot, pressure=pressure)
    if not pressure:
        if not found:
            found.append(ConnectionDiagnosis("healthy", f"Connections are not exhausted: {snapshot.used} of "
                                   f"{snapshot.available} used ({snapshot.used_pct}%)", "info", usage))
        return found
    clients = snapshot.clients
    stale = len(_stale(snapshot, idle_minutes))
    legitimate = snapshot.used - stale
    legit_pct = round(100.0 * legitimate / max(snapshot.available, 1), 1)
    apps = clients["application_name"].fillna("").replace("", "(none)")
    spread = {"applications": int(apps.nunique()), "clients": int(clients["client_addr"].nunique()),
              "active": int((clients["state"] == "active").sum()), "stale_idle": stale,
              "legitimate": legitimate, "legitimate_pct": legit_pct}
    if legit_pct < pressure_pct:  # the stale sessions make the pressure
        if not leaks:  # neither a leak nor an idle pool: stale sessions spread thin
            holders = int(_stale(snapshot, idle_minutes)["application_name"].nunique())
            found.append(ConnectionDiagnosis(
                "stale_sessions", f"Stale sessions hold the slots: {stale} sessions idle ≥ {idle_minutes:g} "
                f"min across {holders} applications", "high", {**usage, **spread}))
        return found
    young = clients[clients["conn_age_min"] < surge_minutes]
    young_active = int((young["state"] == "active").sum())
    young_share = round(100.0 * len(young) / max(snapshot.used, 1), 1)
    if young_share >= surge_share_pct and young_active * 2 >= len(young):
        counts = young["application_name"].fillna("(none)").value_counts().head(3)
        top = {str(k): int(v) for k, v in counts.items()}
        found.append(ConnectionDiagnosis(
            "surge", f"Traffic surge: {len(young)} of {snapshot.used} connections opened in the last "
            f"{surge_minutes:g} min, {young_active} of them active", "high",
            {**usage, **spread, "young_connections": len(young), "young_active": young_active,
             "young_share_pct": young_share, "top_new_applications": top}))
    else:
        found.append(ConnectionDiagnosis(
            "limit_too_low", f"Limit too low for the fleet: {snapshot.used} of {snapshot.available} used by "
            f"{spread['applications']} applications, only {stale} idle ≥ {idle_minutes:g} min", "high",
            {**usage, **spread}))
    return found


def diagnose_connections(snapshot: ConnectionSnapshot | None = None, *, dsn: str = "",
                         idle_minutes: float = 10, **rules: Any) -> pd.DataFrame:
    """Record each cause found as a finding with its evidence; return them as a DataFrame.

    A snapshot that hides other roles' sessions cannot be diagnosed: that raises Forbidden (the
    snapshot already recorded the finding saying which grant is missing).
    """
    import pandas as pd

    snapshot = snapshot if snapshot is not None else connection_snapshot(dsn=dsn)
    found = assess_connections(snapshot, idle_minutes=idle_minutes, **rules)
    if found and found[0].cause == "partial":
        why = f"{snapshot.hidden} sessions are hidden from {snapshot.user}: grant pg_read_all_stats"
        raise Forbidden("postgres", "diagnose connections", why)
    for d in found:
        record.finding(d.title, severity=d.severity, cause=d.cause, **d.evidence)
    return pd.DataFrame([{"cause": d.cause, "severity": d.severity, "finding": d.title} for d in found],
                        columns=["cause", "severity", "finding"])
