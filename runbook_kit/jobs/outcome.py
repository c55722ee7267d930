"""What became of a Job, from its status and its pods, and its record finalized when the runner could not.

A runner in a pod writes its own record to S3 and ends it (succeeded, failed, timed out, aborted on
SIGTERM). What it cannot write is WHY the pod died when the cause is outside it: the Job's
activeDeadlineSeconds, an eviction (DisruptionTarget), the OOM killer, a lost node, an image that
cannot be pulled. `cause_of` names that cause from the Job's status conditions and its pods (pure,
on the API's JSON shapes); `finalize` writes it into the record: a record left "running" (runner
killed) or "aborted" (runner got SIGTERM from the kubelet) becomes "failed" with the cause named and
the cell that was running, keeping every action already applied (runbook_kit.recovery's finalize
path). A Job whose runner never started gets a run entry in incident.json that says so.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from runbook_kit.recorder import run_entry, with_run
from runbook_kit.recovery import finalized
from runbook_kit.store import Store

__all__ = ["CANNOT_START", "cause_of", "finalize", "find_run", "job_state", "runner_started", "start_problem"]

# waiting reasons of a container that will not start without someone changing something
CANNOT_START = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "ErrImageNeverPull",
    }
)


# what `runbook run`'s exit codes mean for a pod (cli.py documents them)
_EXIT_MEANS = {
    2: " (bad input: nothing ran; its log says why)",
    4: " (the store could not be written: the record went to the pod's fallback folder, gone with the pod)",
}


def _conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in ((obj.get("status") or {}).get("conditions") or []) if c.get("status") == "True"]


def job_state(job: Mapping[str, Any]) -> str:
    """running | succeeded | failed, from the Job's Complete/Failed conditions."""
    types = {c.get("type") for c in _conditions(job)}
    if "Failed" in types:
        return "failed"
    if "Complete" in types:
        return "succeeded"
    return "running"


def _disruption(pods: Sequence[Mapping[str, Any]]) -> str | None:
    for pod in pods:
        for cond in _conditions(pod):
            if cond.get("type") == "DisruptionTarget":
                reason = cond.get("reason") or "unknown"
                if reason in ("EvictionByEvictionAPI", "PreemptionByScheduler", "TerminationByKubelet"):
                    return f"the pod was evicted (DisruptionTarget: {reason})"
                if reason == "DeletionByTaintManager":
                    return f"the pod's node was lost or tainted (DisruptionTarget: {reason})"
                return f"the pod was disrupted (DisruptionTarget: {reason})"
    return None


def _terminated(pods: Sequence[Mapping[str, Any]]) -> str | None:
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (status.get("state") or {}).get("terminated") or {}
            if term.get("reason") == "OOMKilled":
                return (
                    f"the runner's container ran out of memory (OOMKilled, exit code {term.get('exitCode')})"
                )
            if term and term.get("exitCode") not in (None, 0):
                code = term["exitCode"]
                why = f", {term['reason']}" if term.get("reason") not in (None, "Error") else ""
                return f"the runner's container exited with code {code}{why}{_EXIT_MEANS.get(code, '')}"
    return None


def runner_started(pods: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a container of the Job's pods ever ran (running or terminated)."""
    return any(
        {"running", "terminated"} & set(s.get("state") or {})
        for p in pods
        for s in (p.get("status") or {}).get("containerStatuses") or []
    )


def start_problem(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """Why the pod's container cannot start (image pull, configuration), None when it is not stuck."""
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in CANNOT_START:
                message = " ".join(str(waiting.get("message") or "").split())[:200]
                return f"the pod could not start ({waiting['reason']}{': ' + message if message else ''})"
    return None


def cause_of(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> str | None:
    """Why a failed Job failed, in a user's words (None when the Job did not fail)."""
    failed = next((c for c in _conditions(job) if c.get("type") == "Failed"), None)
    if failed is None:
        return None
    reason, message = failed.get("reason") or "", " ".join(str(failed.get("message") or "").split())
    stuck = start_problem(pods)
    if reason == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        cause = f"the Job exceeded its activeDeadlineSeconds ({deadline} s)"
        return f"{cause} while {stuck[4:]}" if stuck else cause
    disruption = _disruption(pods)
    if disruption:
        return disruption + ("; a run that may mutate is not re-run" if reason == "PodFailurePolicy" else "")
    if reason == "PodFailurePolicy" and "DisruptionTarget" in message:
        unseen = f"the pod was disrupted, its last state unseen ({message[:200]})"
        return unseen + "; a run that may mutate is not re-run"
    return _terminated(pods) or stuck or f"the Job failed ({reason or 'no reason given'}: {message[:200]})"


def find_run(data: Mapping[str, Any], job: str) -> dict[str, Any] | None:
    """The latest run in incident.json whose runner was the pod of `job`."""
    runs: list[dict[str, Any]] = [
        dict(r)
        for r in data.get("runs", [])
        if isinstance(r, Mapping) and (r.get("runner") or {}).get("job") == job
    ]
    return max(runs, key=lambda r: str(r.get("started") or "")) if runs else None


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def finalize(
    store: Store,
    *,
    incident: str,
    job: Mapping[str, Any],
    cause: str,
    runbook: str,
    runner_started: bool = True,
) -> dict[str, Any]:
    """Write `cause` into the record of a failed Job's run; returns its incident.json run entry, with
    `job_failure` set when this call changed it.

    A record the runner ended itself as succeeded/failed/completed-with-gaps is left as it is (its
    own account is better than ours); "running" and "aborted" become "failed", naming the cause.
    """
    meta = job.get("metadata") or {}
    name = str(meta.get("name"))
    raw = store.read(f"{incident}/incident.json")
    run = find_run(json.loads(raw), name) if raw else None
    if run is None:  # the runner never started (or never reached the store): the index still says so
        run = {
            "runbook": runbook,
            "started": meta.get("creationTimestamp") or _utc_now(),
            "updated": _utc_now(),
            "status": "failed",
            "failure": f"{cause}; "
            + ("its runner left no record in the store" if runner_started else "the runbook did not start"),
            "notebook": "",
            "html": None,
            "record_id": f"{incident}/job-{name}",
            "runner": {"job": name, "namespace": meta.get("namespace")},
            "parameters": {},
            "findings": [],
            "actions": [],
            "gaps": [],
        }
        store.update_json(
            f"{incident}/incident.json", functools.partial(with_run, incident=incident, run=run)
        )
        return {**run, "job_failure": cause}
    if run.get("status") not in ("running", "aborted"):
        return run
    body = store.read(f"{run['record_id']}.ipynb")
    if not body:
        run.update(status="failed", failure=cause)
    else:
        nb = json.loads(body)
        earlier = str(nb["metadata"]["runbook_kit"].get("failure") or "").split(" — ", 1)[-1]
        why = cause + (f" (the runner recorded: {earlier})" if earlier else "")
        nb = finalized(nb, why, status="failed", ename="JobFailed")
        nb["metadata"]["runbook_kit"]["job_failure"] = cause
        store.write(f"{run['record_id']}.ipynb", json.dumps(nb, indent=1).encode())
        _export_html(store, run, nb)
        run = {
            **run,
            **run_entry(
                nb["metadata"]["runbook_kit"], notebook=run.get("notebook") or "", html=run.get("html")
            ),
        }
    store.update_json(f"{incident}/incident.json", functools.partial(with_run, incident=incident, run=run))
    return {**run, "job_failure": cause}


def _export_html(store: Store, run: dict[str, Any], nb: dict[str, Any]) -> None:
    try:
        import nbformat

        from runbook_kit.recorder import make_exporter

        body = make_exporter().from_notebook_node(nbformat.from_dict(nb))[0]
        run["html"] = store.write(f"{run['record_id']}.html", body.encode())
    except Exception as exc:  # the .ipynb is the record
        run["html_note"] = f"HTML export skipped ({type(exc).__name__})"
