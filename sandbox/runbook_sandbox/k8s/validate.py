"""Defaulting and validation of writes, with the API server's field paths and wording.

A runbook's mitigation is only as good as the request it sends: a typo in a memory limit, a negative
replica count or a pod spec edit the API forbids must fail here exactly as it fails in a cluster
(422 Invalid with `causes`), and a valid request must come back with the same defaults the real
server fills in (strategy 25%/25%, revisionHistoryLimit, restartPolicy, ...).
"""

from __future__ import annotations

import re
from typing import Any

from runbook_sandbox.k8s.pods import default_pod
from runbook_sandbox.k8s.selectors import selector_from_match
from runbook_sandbox.k8s.status import invalid
from runbook_sandbox.k8s.store import clone

Cause = tuple[str, str, str]
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$")
_QUANTITY_RE = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


def _name_causes(name: str | None) -> list[Cause]:
    if not name:
        return [("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")]
    if len(name) > 253 or not _DNS1123.match(name):
        return [
            (
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
                "(e.g. 'example.com', regex used for validation is "
                r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            )
        ]
    return []


def _bytes(q: str) -> float:
    from runbook_sandbox.k8s.apps import mib

    return mib(q) or 0.0


def _pod_spec_causes(spec: dict[str, Any] | None, prefix: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [(prefix, "FieldValueRequired", "Required value")]
    containers = spec.get("containers")
    if not containers:
        return [(f"{prefix}.containers", "FieldValueRequired", "Required value")]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, c in enumerate(containers):
        path = f"{prefix}.containers[{i}]"
        if not c.get("name"):
            causes.append((f"{path}.name", "FieldValueRequired", "Required value"))
        elif c["name"] in seen:
            causes.append((f"{path}.name", "FieldValueDuplicate", f'Duplicate value: "{c["name"]}"'))
        seen.add(c.get("name", ""))
        if not c.get("image"):
            causes.append((f"{path}.image", "FieldValueRequired", "Required value"))
        resources = c.get("resources") or {}
        for kind in ("limits", "requests"):
            for resource, value in (resources.get(kind) or {}).items():
                if not isinstance(value, (str, int, float)) or not _QUANTITY.match(str(value)):
                    causes.append(
                        (
                            f"{path}.resources.{kind}[{resource}]",
                            "FieldValueInvalid",
                            f'Invalid value: "{value}": quantities must match the regular expression '
                            f"'{_QUANTITY_RE}'",
                        )
                    )
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        if (
            not causes
            and "memory" in limits
            and "memory" in requests
            and _bytes(str(requests["memory"])) > _bytes(str(limits["memory"]))
        ):
            causes.append(
                (
                    f"{path}.resources.requests",
                    "FieldValueInvalid",
                    f'Invalid value: "{requests["memory"]}": must be less than or equal to memory limit '
                    f"of {limits['memory']}",
                )
            )
    return causes


def _raise(kind: str, group: str, name: str, causes: list[Cause]) -> None:
    if causes:
        raise invalid(kind=kind, group=group, name=name, causes=causes)


def prepare(plural: str, obj: dict[str, Any], *, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaulted copy of a create (current=None) or update body; raises 422 when invalid."""
    obj = clone(obj)
    meta = obj.setdefault("metadata", {})
    name = meta.get("name", "")
    if plural == "pods":
        obj.update(apiVersion="v1", kind="Pod")
        _raise("Pod", "", name, _name_causes(name) + _pod_spec_causes(obj.get("spec"), "spec"))
        if current is not None:
            _pod_update(obj, current)
        else:
            default_pod(obj)
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif plural == "deployments":
        obj.update(apiVersion="apps/v1", kind="Deployment")
        _deployment(obj, current)
    elif plural == "jobs":
        obj.update(apiVersion="batch/v1", kind="Job")
        _job(obj, current)
    elif plural == "namespaces":
        obj.update(apiVersion="v1", kind="Namespace")
        _raise("Namespace", "", name, _name_causes(name))
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = (current or {}).get("status") or {"phase": "Active"}
    elif plural == "poddisruptionbudgets":
        obj.update(apiVersion="policy/v1", kind="PodDisruptionBudget")
        spec = obj.get("spec") or {}
        causes = _name_causes(name)
        if "minAvailable" in spec and "maxUnavailable" in spec:
            causes.append(
                (
                    "spec",
                    "FieldValueInvalid",
                    "Invalid value: ...: minAvailable and maxUnavailable cannot be both set",
                )
            )
        _raise("PodDisruptionBudget", "policy", name, causes)
        meta.setdefault("generation", 1)
    else:
        from runbook_sandbox.k8s.resources import of_plural

        r = of_plural(plural)
        obj.update(apiVersion=r.api_version, kind=r.kind)
        if r.group == "rbac.authorization.k8s.io":  # path-segment names: `system:foo` is valid
            bad = not name or name in (".", "..") or "/" in name or "%" in name
            causes = [("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}"')] if bad else []
        else:
            causes = _name_causes(name)
        _raise(r.kind, r.group, name, causes)
    if current is not None and plural not in ("namespaces",):
        obj["status"] = current.get("status", obj.get("status"))
    return obj


def _deployment(obj: dict[str, Any], current: dict[str, Any] | None) -> None:
    meta, spec = obj["metadata"], obj.setdefault("spec", {})
    name = meta.get("name", "")
    causes = _name_causes(name)
    spec.setdefault("replicas", 1)
    replicas = spec["replicas"]
    if not isinstance(replicas, int) or replicas < 0:
        causes.append(
            (
                "spec.replicas",
                "FieldValueInvalid",
                f"Invalid value: {replicas}: must be greater than or equal to 0",
            )
        )
    template = spec.get("template") or {}
    causes += _pod_spec_causes(template.get("spec"), "spec.template.spec")
    selector = spec.get("selector")
    if not selector:
        causes.append(("spec.selector", "FieldValueRequired", "Required value"))
    elif not selector_from_match(selector)({"metadata": template.get("metadata") or {}}):
        labels = (template.get("metadata") or {}).get("labels") or {}
        causes.append(
            (
                "spec.template.metadata.labels",
                "FieldValueInvalid",
                f"Invalid value: map[string]string{labels}: `selector` does not match template `labels`",
            )
        )
    if current is not None and selector and selector != current["spec"].get("selector"):
        causes.append(("spec.selector", "FieldValueInvalid", "Invalid value: ...: field is immutable"))
    _raise("Deployment", "apps", name, causes)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy["type"] = "RollingUpdate"
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxSurge", "25%")
        rolling.setdefault("maxUnavailable", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_pod({"spec": template["spec"]})
    template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    meta.setdefault("generation", 1)
    if current is None:
        obj["status"] = {}


_POD_MUTABLE = ("image",)


def _pod_update(obj: dict[str, Any], current: dict[str, Any]) -> None:
    """Pod specs are immutable except container images (and a few fields runbooks never touch)."""
    default_pod(obj)
    mine, theirs = clone(obj["spec"]), clone(current["spec"])
    for spec in (mine, theirs):
        spec.pop("nodeName", None)
        for c in spec.get("containers") or []:
            for key in _POD_MUTABLE:
                c.pop(key, None)
    if mine != theirs:
        raise invalid(
            kind="Pod",
            group="",
            name=obj["metadata"]["name"],
            causes=[
                (
                    "spec",
                    "FieldValueForbidden",
                    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                    "(allow it to be set to 1 if it was previously negative)",
                )
            ],
        )
    obj["spec"]["nodeName"] = current["spec"].get("nodeName")


def _job(obj: dict[str, Any], current: dict[str, Any] | None) -> None:
    """batch/v1 Job defaulting and validation (the selector and template labels the controller sets)."""
    import uuid

    meta, spec = obj["metadata"], obj.setdefault("spec", {})
    name = meta.get("name", "")
    if current is not None:  # the selector and the template are immutable once created
        for key in ("selector", "template"):
            if key in spec and spec[key] != current["spec"][key]:
                _raise(
                    "Job",
                    "batch",
                    name,
                    [(f"spec.{key}", "FieldValueInvalid", "Invalid value: field is immutable")],
                )
            spec[key] = current["spec"][key]
        meta.setdefault("generation", current["metadata"].get("generation", 1))
        return
    template = spec.get("template")
    causes = _name_causes(name)
    if len(name) > 63:
        causes.append(
            (
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": must be no more than 63 characters',
            )
        )
    if not isinstance(template, dict):
        _raise("Job", "batch", name, [*causes, ("spec.template", "FieldValueRequired", "Required value")])
        return
    pod_spec = template.get("spec")
    causes += _pod_spec_causes(pod_spec, "spec.template.spec")
    policy = (pod_spec or {}).get("restartPolicy") if isinstance(pod_spec, dict) else None
    if policy != "Never":
        shown = policy or "Always"
        causes.append(
            (
                "spec.template.spec.restartPolicy",
                "FieldValueNotSupported",
                f'Unsupported value: "{shown}": supported values: "Never" '
                "(the sandbox runs a Job's container once; OnFailure is not supported)",
            )
        )
    for key in (
        "parallelism",
        "completions",
        "backoffLimit",
        "activeDeadlineSeconds",
        "ttlSecondsAfterFinished",
    ):
        value = spec.get(key)
        if value is not None and (
            not isinstance(value, int) or value < (1 if key == "activeDeadlineSeconds" else 0)
        ):
            bound = "greater than 0" if key == "activeDeadlineSeconds" else "greater than or equal to 0"
            causes.append((f"spec.{key}", "FieldValueInvalid", f"Invalid value: {value}: must be {bound}"))
    for i, rule in enumerate((spec.get("podFailurePolicy") or {}).get("rules") or []):
        if rule.get("action") not in ("FailJob", "Ignore", "Count", "FailIndex"):
            causes.append(
                (
                    f"spec.podFailurePolicy.rules[{i}].action",
                    "FieldValueNotSupported",
                    f'Unsupported value: "{rule.get("action")}": supported values: "Count", "FailIndex", '
                    '"FailJob", "Ignore"',
                )
            )
        if bool(rule.get("onExitCodes")) == bool(rule.get("onPodConditions")):
            causes.append(
                (
                    f"spec.podFailurePolicy.rules[{i}]",
                    "FieldValueInvalid",
                    "Invalid value: specifying one of OnExitCodes and OnPodConditions is required",
                )
            )
    if spec.get("completionMode", "NonIndexed") != "NonIndexed":
        causes.append(
            (
                "spec.completionMode",
                "FieldValueNotSupported",
                f'Unsupported value: "{spec["completionMode"]}": supported values: "NonIndexed" '
                "(in the sandbox)",
            )
        )
    if spec.get("selector") and not spec.get("manualSelector"):
        causes.append(
            ("spec.selector", "FieldValueInvalid", "Invalid value: `selector` will be auto-generated")
        )
    _raise("Job", "batch", name, causes)
    uid = meta.setdefault("uid", str(uuid.uuid4()))
    labels = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    }
    if not spec.get("manualSelector"):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    tmeta = template.setdefault("metadata", {})
    tmeta.setdefault("creationTimestamp", None)
    tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}
    if not meta.get("labels"):  # a Job's labels default to its pod template's
        meta["labels"] = dict(tmeta["labels"])
    for key, value in (
        ("parallelism", 1),
        ("completions", 1),
        ("backoffLimit", 6),
        ("completionMode", "NonIndexed"),
        ("suspend", False),
        ("manualSelector", None),
        ("podReplacementPolicy", "TerminatingOrFailed"),
    ):
        if value is not None:
            spec.setdefault(key, value)
    if spec.get("podFailurePolicy"):
        spec["podReplacementPolicy"] = "Failed"
        for rule in spec["podFailurePolicy"].get("rules") or []:
            for pattern in rule.get("onPodConditions") or []:
                pattern.setdefault("status", "True")
    default_pod({"spec": pod_spec, "metadata": tmeta})
    meta.setdefault("generation", 1)
    obj["status"] = {}
