"""SelfSubjectAccessReview and SelfSubjectReview through the official client: everything allowed by
default, denials read from `<state-dir>/access.json` while the server runs. (`kubectl auth can-i`
sends its review as protobuf, which the sandbox does not speak: see the README.)"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from runbook_sandbox.k8s.access import deny

pytestmark = pytest.mark.sandbox


def review(api: Any, **attrs: str) -> Any:
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}
    return client.AuthorizationV1Api(api).create_self_subject_access_review(body).status


def test_everything_allowed_until_denied(fresh_cluster: Any) -> None:
    api = fresh_cluster.api_client()
    assert review(api, verb="patch", group="apps", resource="deployments", namespace="payments").allowed
    deny(fresh_cluster.state_dir, [
        {"verb": "patch", "group": "apps", "resource": "deployments", "namespace": "payments"},
        {"verb": "create", "resource": "pods", "subresource": "eviction"},
    ])
    status = review(api, verb="patch", group="apps", resource="deployments", namespace="payments")
    assert status.allowed is False and status.denied is True
    assert "access.json" in status.reason
    # another namespace, another verb, the core group's `deployments` (no such thing): allowed
    assert review(api, verb="patch", group="apps", resource="deployments", namespace="other").allowed
    assert review(api, verb="get", group="apps", resource="deployments", namespace="payments").allowed
    assert review(api, verb="patch", resource="deployments", namespace="payments").allowed
    assert not review(api, verb="create", resource="pods", subresource="eviction", namespace="x").allowed
    assert review(api, verb="create", resource="pods", namespace="x").allowed
    deny(fresh_cluster.state_dir, [])
    assert review(api, verb="patch", group="apps", resource="deployments", namespace="payments").allowed
    # reviews are answered and logged as creates, never stored
    logged = [e for e in fresh_cluster.requests() if "selfsubjectaccessreviews" in e["path"]]
    assert {e["status"] for e in logged} == {201}


def test_review_without_attributes_is_a_bad_request(fresh_cluster: Any) -> None:
    api = fresh_cluster.api_client()
    with pytest.raises(client.ApiException) as err:
        client.AuthorizationV1Api(api).create_self_subject_access_review(
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": {}})
    assert err.value.status == 400


def test_whoami_and_discovery(fresh_cluster: Any) -> None:
    api = fresh_cluster.api_client()
    who = client.AuthenticationV1Api(api).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert who.status.user_info.username == "runbook-sandbox"
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"authorization.k8s.io", "authentication.k8s.io"} <= groups
