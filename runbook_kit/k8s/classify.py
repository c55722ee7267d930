"""Why is this container crash-looping? A pure classification of one container's evidence.

Input is plain data — the pod dict, its container status, the pod's events and the previous
container's log text — so every rule is unit-tested without a cluster. The order of the rules is
the order an SRE checks: an image that cannot be pulled or a config that cannot be mounted never
ran the app; an OOM kill is the kernel's verdict whatever the exit code; a probe kill is the
kubelet's; anything else is the application's own exit, named by its log signature.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from runbook_kit.k8s.logs import log_signatures

__all__ = ["CATEGORIES", "CRASH_WAITING", "ContainerCrash", "classify_container", "crashing_containers"]

OOM = "OOMKilled"
BAD_IMAGE = "bad image"
PROBE = "failing probe"
CONFIG = "config error"
APP = "application error"
CATEGORIES = (OOM, BAD_IMAGE, PROBE, CONFIG, APP)

IMAGE_WAITING = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
CONFIG_WAITING = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
CRASH_WAITING = {"CrashLoopBackOff"} | IMAGE_WAITING | CONFIG_WAITING
_CONFIG_EVENT = re.compile(
    r"(secret|configmap)s? \"?[\w.-]+\"? not found|couldn't find key|"
    r"not found.*(secret|configmap)",
    re.I,
)
_PROBE_EVENT = re.compile(r"(Liveness|Startup) probe failed|failed (liveness|startup) probe", re.I)
RESTART_THRESHOLD = 3  # restarts after which a running container still counts as crash-looping


@dataclasses.dataclass(frozen=True)
class ContainerCrash:
    pod: str
    container: str
    category: str  # one of CATEGORIES
    detail: str  # one line naming the evidence
    restarts: int
    exit_code: int | None
    waiting_reason: str
    last_finished: str | None
    memory_limit: str
    signatures: tuple[str, ...] = ()


def crashing_containers(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Container statuses of a pod that are crash-looping (or cannot start)."""
    found = []
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = ((cs.get("state") or {}).get("waiting") or {}).get("reason", "")
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if waiting in CRASH_WAITING or (
            int(cs.get("restartCount") or 0) >= RESTART_THRESHOLD and last.get("exitCode") not in (None, 0)
        ):
            found.append(dict(cs))
    return found


def _limit(pod: Mapping[str, Any], container: str) -> str:
    for c in (pod.get("spec") or {}).get("containers") or []:
        if c.get("name") == container:
            return str(((c.get("resources") or {}).get("limits") or {}).get("memory", ""))
    return ""


def classify_container(
    *,
    pod: Mapping[str, Any],
    status: Mapping[str, Any],
    events: Iterable[Mapping[str, Any]] = (),
    log_text: str = "",
) -> ContainerCrash:
    """The category of one crash-looping container, with the evidence that decided it."""
    name = status.get("name", "")
    state = status.get("state") or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason", "")
    last = (status.get("lastState") or {}).get("terminated") or state.get("terminated") or {}
    exit_code = last.get("exitCode")
    messages = [f"{e.get('reason', '')}: {e.get('message', '')}" for e in events]
    signatures = tuple(log_signatures(log_text))
    limit = _limit(pod, name)

    def crash(category: str, detail: str) -> ContainerCrash:
        return ContainerCrash(
            pod=(pod.get("metadata") or {}).get("name", ""),
            container=name,
            category=category,
            detail=detail,
            restarts=int(status.get("restartCount") or 0),
            exit_code=exit_code,
            waiting_reason=reason,
            last_finished=last.get("finishedAt"),
            memory_limit=limit,
            signatures=signatures,
        )

    if reason in IMAGE_WAITING:
        return crash(BAD_IMAGE, f"{reason}: {waiting.get('message') or status.get('image', '')}".strip())
    config_event = next((m for m in messages if _CONFIG_EVENT.search(m)), "")
    if reason in CONFIG_WAITING or (config_event and not last):
        return crash(CONFIG, waiting.get("message") or config_event or reason)
    if last.get("reason") == OOM:
        return crash(OOM, f"OOMKilled (exit {exit_code}) at memory limit {limit or 'none'}")
    probe_event = next((m for m in messages if _PROBE_EVENT.search(m)), "")
    if probe_event and exit_code in (137, 143, None):
        return crash(PROBE, probe_event)
    if exit_code == 137 and "out of memory" in signatures:
        return crash(OOM, f"killed (exit 137) with out-of-memory in its log, memory limit {limit or 'none'}")
    if "missing config" in signatures or config_event:
        return crash(CONFIG, config_event if config_event else f"exit {exit_code}; log: missing config")
    sig = ", ".join(signatures) or "no known signature in the previous log"
    return crash(APP, f"exit code {exit_code} ({last.get('reason') or 'Error'}); log: {sig}")
