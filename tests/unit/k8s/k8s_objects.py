"""Plain-dict Kubernetes objects shaped like the API's JSON, for tests of pure logic."""

from __future__ import annotations

from typing import Any


def container_status(
    name: str = "api",
    *,
    restarts: int = 0,
    waiting: str = "",
    waiting_message: str = "",
    last_reason: str = "",
    exit_code: int | None = None,
    ready: bool = False,
    finished: str = "2026-01-01T10:00:00Z",
) -> dict[str, Any]:
    state: dict[str, Any] = (
        {"waiting": {"reason": waiting, "message": waiting_message}}
        if waiting
        else {"running": {"startedAt": "2026-01-01T10:00:05Z"}}
    )
    status: dict[str, Any] = {
        "name": name,
        "restartCount": restarts,
        "ready": ready,
        "state": state,
        "image": "registry/app:1.0",
    }
    if last_reason or exit_code is not None:
        status["lastState"] = {
            "terminated": {"reason": last_reason, "exitCode": exit_code, "finishedAt": finished}
        }
    return status


def pod(
    name: str = "api-abc-1",
    *,
    statuses: list[dict[str, Any]] | None = None,
    memory_limit: str = "256Mi",
    phase: str = "Running",
    node: str = "node-a",
    owner: tuple[str, str] | None = ("ReplicaSet", "api-abc"),
    namespace: str = "payments",
    created: str = "2026-01-01T09:00:00Z",
    annotations: dict[str, str] | None = None,
    requests: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "creationTimestamp": created,
        "annotations": annotations or {},
    }
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True, "uid": "u1"}]
    resources: dict[str, Any] = {"limits": {"memory": memory_limit}} if memory_limit else {}
    if requests:
        resources["requests"] = requests
    return {
        "metadata": meta,
        "spec": {
            "nodeName": node,
            "containers": [{"name": "api", "image": "registry/app:1.0", "resources": resources}],
        },
        "status": {"phase": phase, "podIP": "10.0.0.5", "containerStatuses": statuses or []},
    }


def template(*, image: str = "registry/app:1.0", memory: str = "512Mi", env: tuple[str, ...] = ()) -> dict:
    return {
        "metadata": {"labels": {"app": "api"}},
        "spec": {
            "containers": [
                {
                    "name": "api",
                    "image": image,
                    "resources": {"limits": {"memory": memory}},
                    "env": [{"name": e, "value": "x"} for e in env],
                }
            ]
        },
    }
