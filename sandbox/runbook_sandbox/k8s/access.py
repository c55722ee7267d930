"""Who may do what: SelfSubjectAccessReview and SelfSubjectReview, answered from a file of denials.

A real cluster answers `kubectl auth can-i` (and `runbook doctor`) from RBAC. The sandbox has one
user and allows everything, unless `<state-dir>/access.json` denies something:

    {"deny": [{"verb": "patch", "group": "apps", "resource": "deployments"},
              {"verb": "create", "resource": "pods", "subresource": "eviction", "namespace": "payments"}]}

A rule matches a review when every field it names matches (`"*"` or an absent field matches
anything; `group` defaults to the core group ""). The file is read on every review, so a test can
deny a verb to a running sandbox (`deny(state_dir, rules)`) and see `runbook doctor` name it.
Only reviews read the file: the sandbox does not enforce it on the requests themselves. The official
client's reviews are JSON; `kubectl auth can-i` sends protobuf, which the sandbox does not speak.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runbook_sandbox.k8s.status import bad_request

__all__ = ["ACCESS_FILE", "USER", "access_review", "deny", "self_review"]

ACCESS_FILE = "access.json"
USER = "runbook-sandbox"  # the kubeconfig's user, as the API server names it
_FIELDS = ("verb", "group", "resource", "subresource", "namespace", "name")


def deny(state_dir: Path, rules: list[dict[str, str]]) -> None:
    """Replace the denials of the sandbox whose Kubernetes state directory is `state_dir`."""
    tmp = state_dir / (ACCESS_FILE + ".tmp")
    tmp.write_text(json.dumps({"deny": rules}, indent=2))
    tmp.replace(state_dir / ACCESS_FILE)


def _rules(state_dir: Path | None) -> list[dict[str, Any]]:
    if state_dir is None:
        return []
    try:
        data = json.loads((state_dir / ACCESS_FILE).read_text())
    except (OSError, ValueError):
        return []
    rules = data.get("deny") if isinstance(data, dict) else None
    return [r for r in rules or [] if isinstance(r, dict)]


def _matches(rule: dict[str, Any], attrs: dict[str, Any]) -> bool:
    for key in _FIELDS:
        wanted = rule.get(key, "" if key == "group" else "*")
        if wanted != "*" and wanted != (attrs.get(key) or ""):
            return False
    return True


def access_review(body: Any, *, state_dir: Path | None) -> dict[str, Any]:
    """The SelfSubjectAccessReview `body` with its `status` filled in (allowed / denied, reason)."""
    if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
        raise bad_request("SelfSubjectAccessReview: spec is required")
    spec = body["spec"]
    attrs = spec.get("resourceAttributes")
    if not isinstance(attrs, dict):
        if isinstance(spec.get("nonResourceAttributes"), dict):  # /healthz and the like: allowed
            return dict(body, status={"allowed": True})
        raise bad_request("SelfSubjectAccessReview: exactly one of nonResourceAttributes or "
                          "resourceAttributes must be specified")
    if not attrs.get("verb"):
        raise bad_request("SelfSubjectAccessReview: resourceAttributes.verb is required")
    rule = next((r for r in _rules(state_dir) if _matches(r, attrs)), None)
    status: dict[str, Any] = {"allowed": rule is None}
    if rule is None:
        status["reason"] = "sandbox: everything is allowed unless access.json denies it"
    else:
        status["denied"] = True
        status["reason"] = f"sandbox: denied by {json.dumps(rule, sort_keys=True)} in access.json"
    doc = dict(body, apiVersion="authorization.k8s.io/v1", kind="SelfSubjectAccessReview", status=status)
    doc.setdefault("metadata", {})
    return doc


def self_review(body: Any, *, user: str = USER) -> dict[str, Any]:
    """SelfSubjectReview (`kubectl auth whoami`): the sandbox's admin, or a Job pod's ServiceAccount."""
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "status": {"userInfo": {"username": user, "groups": _groups(user)}},
    }


def _groups(user: str) -> list[str]:
    if user.startswith("system:serviceaccount:"):
        namespace = user.split(":")[2]
        return ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]
    return ["system:authenticated"]
