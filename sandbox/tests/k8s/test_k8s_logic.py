"""Pure logic of the Kubernetes sandbox on plain data: patches, selectors, durations, crash-loop timing."""

from __future__ import annotations

import datetime as dt

import pytest

from runbook_sandbox.k8s import apps, patch, selectors, tables, workloads
from runbook_sandbox.k8s.status import ApiError

POD = {
    "metadata": {"name": "p", "labels": {"app": "api", "tier": "web"}},
    "spec": {
        "containers": [
            {
                "name": "api",
                "image": "a:1",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            },
            {"name": "sidecar", "image": "s:1"},
        ]
    },
}


def test_strategic_merge_by_name_and_directives() -> None:
    out = patch.apply(
        POD,
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "api"}],
                "containers": [
                    {
                        "name": "api",
                        "env": [{"name": "B", "$patch": "delete"}, {"name": "C", "value": "3"}],
                        "resources": {"limits": {"memory": "512Mi"}},
                    }
                ],
            }
        },
        patch.STRATEGIC,
    )
    assert [c["name"] for c in out["spec"]["containers"]] == ["sidecar", "api"]
    api = out["spec"]["containers"][1]
    assert api["image"] == "a:1" and [e["name"] for e in api["env"]] == ["A", "C"]
    assert api["resources"]["limits"]["memory"] == "512Mi"
    assert POD["spec"]["containers"][0]["env"][1]["name"] == "B"  # the input is not modified
    retained = patch.apply(
        {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}},
        {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}},
        patch.STRATEGIC,
    )
    assert retained == {"strategy": {"type": "Recreate"}}
    replaced = patch.apply({"a": {"x": 1, "y": 2}}, {"a": {"$patch": "replace", "z": 3}}, patch.STRATEGIC)
    assert replaced == {"a": {"z": 3}}


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    out = patch.apply(
        POD,
        {"spec": {"containers": [{"name": "only"}]}, "metadata": {"labels": {"tier": None}}},
        patch.MERGE_PATCH,
    )
    assert out["spec"]["containers"] == [{"name": "only"}] and out["metadata"]["labels"] == {"app": "api"}


def test_json_patch_operations_and_failures() -> None:
    out = patch.apply(
        POD,
        [
            {"op": "replace", "path": "/spec/containers/0/image", "value": "a:2"},
            {"op": "add", "path": "/metadata/labels/new~1key", "value": "x"},
            {"op": "remove", "path": "/spec/containers/1"},
            {"op": "copy", "from": "/metadata/name", "path": "/metadata/generateName"},
        ],
        patch.JSON_PATCH,
    )
    assert out["spec"]["containers"][0]["image"] == "a:2" and len(out["spec"]["containers"]) == 1
    assert out["metadata"]["labels"]["new/key"] == "x" and out["metadata"]["generateName"] == "p"
    with pytest.raises(ApiError) as err:
        patch.apply(POD, [{"op": "replace", "path": "/spec/missing/x", "value": 1}], patch.JSON_PATCH)
    assert err.value.code == 422
    with pytest.raises(ApiError) as err:
        patch.apply(POD, {"spec": {}}, "application/apply-patch+yaml")
    assert err.value.code == 415


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=api", True),
        ("app==api,tier!=db", True),
        ("app in (api,web)", True),
        ("app notin (api)", False),
        ("tier", True),
        ("!tier", False),
        ("missing", False),
        ("!missing", True),
        ("app=other", False),
    ],
)
def test_label_selector(selector: str, expected: bool) -> None:
    predicate = selectors.label_predicate(selector)
    assert predicate is not None and predicate(POD) is expected


def test_selector_errors() -> None:
    with pytest.raises(ApiError):
        selectors.label_predicate("app in api")
    with pytest.raises(ApiError) as err:
        selectors.field_predicate("spec.bogus=1", plural="pods")
    assert err.value.code == 400 and "field label not supported" in err.value.message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (119, "119s"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (30 * 3600, "30h"),
        (4 * 86400, "4d"),
        (3 * 86400 + 5 * 3600, "3d5h"),
        (400 * 86400, "400d"),
    ],
)
def test_human_duration_matches_apimachinery(seconds: int, text: str) -> None:
    assert tables.human_duration(seconds) == text


def test_crash_loop_backoff_doubles_and_caps() -> None:
    app = apps.app_for("x.dkr.ecr.us-east-1.amazonaws.com/payments/api:1.42.0")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    early = apps.container_timeline(
        app=app, limit_mib=256, first_start=start, at=start + dt.timedelta(minutes=14)
    )
    gaps = [
        (b.started - a.finished).total_seconds()
        for a, b in zip(early.runs, early.runs[1:], strict=False)
        if a.finished
    ]
    assert gaps == [10, 20, 40, 80, 160, 300] and early.restart_count == 7 and early.waiting_since
    # months of crash-looping: counts keep growing at one restart per capped cycle (300 s + the run)
    later = apps.container_timeline(
        app=app, limit_mib=256, first_start=start, at=start + dt.timedelta(days=90)
    )
    cycle = 300 + app.oom_after
    assert abs(later.restart_count - 90 * 86400 / cycle) < 10 and len(later.runs) <= apps.KEEP_RUNS
    assert later.backoff_events > later.restart_count * 30
    healthy = apps.container_timeline(
        app=app, limit_mib=512, first_start=start, at=start + dt.timedelta(hours=2)
    )
    assert not healthy.crashing and healthy.restart_count == 0


def test_rolling_budget_rounds_like_the_deployment_controller() -> None:
    def budget(replicas: int, surge: object = "25%", unavailable: object = "25%") -> tuple[int, int]:
        return workloads.rolling_budget(
            {
                "spec": {
                    "replicas": replicas,
                    "strategy": {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                }
            }
        )

    assert budget(3) == (1, 0)  # surge rounds up, unavailable down
    assert budget(10) == (3, 2)
    assert budget(1, 0, 0) == (0, 1)
