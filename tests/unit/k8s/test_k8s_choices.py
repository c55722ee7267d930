"""Choosing a plan by name: bad names and missing targets fail before any cluster call."""

from __future__ import annotations

import pytest

from runbook_kit import ParameterError, apply
from runbook_kit.k8s import plan_action, plan_mitigation
from runbook_kit.k8s.diagnose import CrashloopDiagnosis as Diagnosis


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "reboot"}, "action must be one of"),
        ({"action": "scale", "namespace": "payments", "deployment": "api"}, "needs replicas"),
        ({"action": "drain"}, "needs node"),
        ({"action": "delete_pod", "namespace": "payments"}, "needs pod"),
        ({"action": "rollback", "namespace": "payments"}, "needs deployment"),
    ],
)
def test_plan_action_rejects_bad_input(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        plan_action(**kwargs)


def test_status_and_none_are_skipped_without_a_cluster():
    assert apply(plan_action(action="status", namespace="payments")).outcome == "skipped"
    quiet = Diagnosis("payments", "api", [], "", "none", "nothing is crash-looping")
    assert (
        apply(plan_mitigation(mitigation="recommended", diagnosis=quiet), dry_run=False).outcome == "skipped"
    )
    with pytest.raises(ParameterError, match="mitigation must be one of"):
        plan_mitigation(mitigation="pray", diagnosis=quiet)
    with pytest.raises(ParameterError, match="OOMKilled diagnosis"):
        plan_mitigation(mitigation="raise_memory", diagnosis=quiet)
