"""Steps that keep logic out of the notebooks: the pod to describe, whether to wait for a rollout."""

from __future__ import annotations

import pandas as pd

from runbook_kit.guard import Result
from runbook_kit.k8s import most_restarted_pod
from runbook_kit.k8s.verify import changed_deployment
from runbook_kit.plans import plan_no_change


def test_most_restarted_pod_is_the_one_with_most_restarts_or_empty():
    pods = pd.DataFrame({"pod": ["b", "a", "c"], "restarts": [2, 7, 7]})
    assert most_restarted_pod(pods) == "a"  # ties broken by name, as pod_status sorts
    assert most_restarted_pod(pd.DataFrame(columns=["pod", "restarts"])) == ""


def test_only_an_applied_change_of_that_deployment_is_waited_for():
    plan = plan_no_change(action="rollout undo", target="deployment/api", backend="k8s", reason="x")
    touching = type(plan)(**{**plan.__dict__, "targets": ["deployment/api"], "nothing_to_do": False})
    assert changed_deployment(Result(touching, "applied"), "api")
    assert not changed_deployment(Result(touching, "dry-run"), "api")
    assert not changed_deployment(Result(touching, "applied"), "worker")
    assert not changed_deployment(Result(plan, "skipped"), "api")
    assert not changed_deployment(None, "api")


def test_an_unset_namespace_is_refused_not_read_as_every_namespace():
    import pytest

    from runbook_kit import ParameterError
    from runbook_kit.k8s import pod_status

    with pytest.raises(ParameterError, match="namespace is not set"):
        pod_status(namespace=None)  # type: ignore[arg-type]
