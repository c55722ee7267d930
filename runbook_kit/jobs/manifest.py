"""The Kubernetes Job of one run, as data: its name, labels and spec. Pure: nothing here talks to a cluster.

Why each field is what it is:

* **name** — derived from the run's identity (runbook, incident, canonical parameters, optional run
  id): the same submission twice is a 409 on create, and the executor then ATTACHES to the Job that
  exists instead of running the runbook twice. A deliberate second run of the same thing passes a run
  id (`runbook run --run-id`). DNS-1123, at most 63 characters (the Job controller copies it into the
  `job-name` label of its pods), readable prefix + a 10-hex hash.
* **restartPolicy: Never** — a failed runner is a failed run with a record, never restarted in place.
* **backoffLimit / podFailurePolicy** — `backoffLimit: 0` for every run: a runner that exited wrote its
  record, and a second pod would be a second run. A run that may mutate (`dry_run` false) also gets a
  policy failing the Job on `DisruptionTarget`: an evicted mutating run is never re-run behind anyone's
  back. A dry run's evicted pod is replaced (`Ignore`): re-reading is harmless, and the evicted
  attempt's record says it was aborted.
* **activeDeadlineSeconds** — the run's `--timeout` plus a start-up allowance (image pull, scheduling;
  `jobs.startup_seconds`, default 120): the runner's own timeout fires first and writes its record;
  the Job's deadline is the backstop for a runner that cannot.
* **parameters as data** — `command: ["runbook"]`, `args: ["run", NAME, ..., "-p", KEY, VALUE]`: an
  argument vector, never a shell string. Credentials only by reference: the pod's ServiceAccount
  (`runbook-<runbook>`, the one `runbook rbac` creates; IRSA/workload identity hang off it) and
  optional `envFrom` Secret references; a parameter that looks like a credential is refused.
* **RUNBOOK_READ_ONLY** — a read-only machine's Jobs are read-only too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from runbook_kit.errors import ParameterError
from runbook_kit.redact import Redactor, is_secret_name

__all__ = [
    "LABEL_PREFIX",
    "MANAGED_BY",
    "JobSpec",
    "arg_value",
    "build_job",
    "dns_name",
    "job_name",
    "label_value",
    "may_mutate",
    "run_identity",
    "service_account_for",
]

MANAGED_BY = "runbook-kit"
LABEL_PREFIX = "runbook-kit.io"
CONTAINER = "runbook"
DEFAULT_TTL = 86400  # a finished Job (and its pod's logs) stays a day, then the cluster removes it
DEFAULT_STARTUP = 120  # seconds added to the run's timeout for scheduling and the image pull

_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")


def dns_name(text: str, *, limit: int = 63) -> str:
    """`text` as a DNS-1123 label: lower case, [a-z0-9-], starting and ending alphanumeric ("" if none)."""
    name = _NOT_DNS.sub("-", text.lower().replace("_", "-"))
    name = re.sub(r"-{2,}", "-", name)[:limit]
    return name.strip("-")


def label_value(text: str) -> str:
    """`text` as a label value: at most 63 of [A-Za-z0-9_.-], alphanumeric at both ends ("" if none)."""
    value = _NOT_LABEL.sub("-", str(text))[:63]
    return value.strip("-_.")


def service_account_for(runbook: str) -> str:
    """The ServiceAccount `runbook rbac RUNBOOK` creates: `runbook-<runbook>`, DNS-safe."""
    return dns_name(f"runbook-{runbook}")


def may_mutate(parameters: Mapping[str, Any]) -> bool:
    """A run may change a system unless its `dry_run` parameter is true (a runbook without one may)."""
    return parameters.get("dry_run", True) is not True if "dry_run" in parameters else True


def arg_value(value: Any) -> str:
    """A validated parameter value as the `-p KEY VALUE` string `runbook run` coerces back to it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def run_identity(
    *, runbook: str, incident: str, parameters: Mapping[str, Any], run_id: str | None = None
) -> str:
    """A hex digest of what makes two submissions "the same run" (parameters in canonical form)."""
    canonical = json.dumps(
        {
            "runbook": runbook,
            "incident": incident,
            "run_id": run_id,
            "parameters": {k: arg_value(v) for k, v in sorted(parameters.items())},
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def job_name(*, runbook: str, incident: str, parameters: Mapping[str, Any], run_id: str | None = None) -> str:
    """`rb-<runbook>-<incident>-<hash10>`, at most 63 characters, the same for the same submission."""
    digest = run_identity(runbook=runbook, incident=incident, parameters=parameters, run_id=run_id)[:10]
    prefix = dns_name(f"rb-{runbook}-{incident}", limit=63 - 11)
    return f"{prefix}-{digest}"


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """Everything a Job of one run needs; `build_job` turns it into the manifest."""

    runbook: str
    incident: str
    parameters: Mapping[str, Any]  # validated values (the runbook's declared types)
    image: str
    store: str  # s3://bucket/prefix: a pod cannot write the submitter's folder
    namespace: str
    timeout: float
    cell_timeout: float | None = None
    run_id: str | None = None
    service_account: str | None = None  # None: runbook-<runbook>
    env_from_secrets: Sequence[str] = ()
    env: Mapping[str, str] = dataclasses.field(
        default_factory=dict
    )  # plain settings (jobs.env), never secrets
    ttl_seconds: int = DEFAULT_TTL
    startup_seconds: int = DEFAULT_STARTUP
    read_only: bool = False  # the submitting machine is read-only: so is the Job
    started_by: str | None = None
    episode: str | None = None  # the alert receiver's run id, when serve submitted it
    image_pull_policy: str | None = None
    active_deadline: int | None = None  # None: the run's timeout + startup_seconds

    @property
    def name(self) -> str:
        return job_name(
            runbook=self.runbook, incident=self.incident, parameters=self.parameters, run_id=self.run_id
        )

    @property
    def mutating(self) -> bool:
        return may_mutate(self.parameters) and not self.read_only

    @property
    def deadline(self) -> int:
        if self.active_deadline is not None:
            return self.active_deadline
        return math.ceil(self.timeout) + max(0, int(self.startup_seconds))

    def args(self) -> list[str]:
        args = [
            "run",
            self.runbook,
            "--incident",
            self.incident,
            "--store",
            self.store,
            "--timeout",
            f"{self.timeout:g}",
        ]
        if self.cell_timeout is not None:
            args += ["--cell-timeout", f"{self.cell_timeout:g}"]
        for key, value in self.parameters.items():
            args += ["-p", key, arg_value(value)]
        return args


def _check(spec: JobSpec) -> None:
    if not spec.image or any(c.isspace() for c in spec.image):
        raise ParameterError(
            "no image for the Job: pass --image, set RUNBOOK_IMAGE or jobs.image in "
            "runbook.yaml (there is no default image)"
        )
    if not spec.store.startswith("s3://"):
        raise ParameterError(
            f"--store {spec.store!r}: a Job needs an s3:// store (its pod cannot write this machine's folder)"
        )
    if dns_name(spec.namespace) != spec.namespace:
        raise ParameterError(f"--job-namespace {spec.namespace!r} is not a valid namespace name")
    sa = spec.service_account
    if sa is not None and dns_name(sa, limit=253) != sa:
        raise ParameterError(f"--service-account {sa!r} is not a valid ServiceAccount name")
    for key, value in spec.env.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or key == "RUNBOOK_READ_ONLY":
            raise ParameterError(
                f"jobs.env: {key!r} cannot be set (a variable name; RUNBOOK_READ_ONLY follows "
                "the submitting machine)"
            )
        if is_secret_name(key) or Redactor(()).text(f"{key}={value}") != f"{key}={value}":
            raise ParameterError(
                f"jobs.env: {key!r} looks like a credential; give it by reference (jobs.env_from_secrets)"
            )
    for secret in spec.env_from_secrets:
        if dns_name(secret, limit=253) != secret:
            raise ParameterError(f"jobs.env_from_secrets: {secret!r} is not a valid Secret name")


def labels(spec: JobSpec) -> dict[str, str]:
    out = {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/name": "runbook",
        f"{LABEL_PREFIX}/incident": label_value(spec.incident),
        f"{LABEL_PREFIX}/runbook": label_value(spec.runbook),
        f"{LABEL_PREFIX}/run": spec.name[-10:],
        f"{LABEL_PREFIX}/mutating": "true" if spec.mutating else "false",
    }
    if spec.episode:
        out[f"{LABEL_PREFIX}/episode"] = label_value(spec.episode)
    if spec.started_by and label_value(spec.started_by):
        out[f"{LABEL_PREFIX}/started-by"] = label_value(spec.started_by)
    return out


def build_job(spec: JobSpec) -> dict[str, Any]:
    """The batch/v1 Job manifest of `spec` (ParameterError when the spec cannot make a safe Job)."""
    _check(spec)
    name, job_labels = spec.name, labels(spec)
    env: list[dict[str, Any]] = [
        {"name": "RUNBOOK_JOB", "value": name},
        {"name": "RUNBOOK_JOB_NAMESPACE", "value": spec.namespace},
        {"name": "RUNBOOK_IMAGE", "value": spec.image},
        {"name": "RUNBOOK_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    env += [{"name": k, "value": str(v)} for k, v in spec.env.items() if k not in {e["name"] for e in env}]
    if spec.read_only:
        env.append({"name": "RUNBOOK_READ_ONLY", "value": "1"})
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image,
        "command": ["runbook"],
        "args": spec.args(),
        "env": env,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    if spec.env_from_secrets:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in spec.env_from_secrets]
    if spec.image_pull_policy:
        container["imagePullPolicy"] = spec.image_pull_policy
    # backoffLimit 0 for every run: a runner that exits has written its record (a second pod would be
    # a second run in the incident). A disruption fails a mutating run's Job; a dry run's pod is
    # replaced (Ignore: not counted), as re-reading is harmless.
    action = "FailJob" if spec.mutating else "Ignore"
    policy = {"rules": [{"action": action, "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    annotations = {
        f"{LABEL_PREFIX}/incident": spec.incident,
        f"{LABEL_PREFIX}/runbook": spec.runbook,
        f"{LABEL_PREFIX}/store": spec.store,
    }
    if spec.run_id:
        annotations[f"{LABEL_PREFIX}/run-id"] = spec.run_id
    if spec.started_by:
        annotations[f"{LABEL_PREFIX}/started-by"] = spec.started_by
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": spec.namespace,
            "labels": job_labels,
            "annotations": annotations,
        },
        "spec": {
            "backoffLimit": 0,
            "podFailurePolicy": policy,
            "activeDeadlineSeconds": spec.deadline,
            "ttlSecondsAfterFinished": spec.ttl_seconds,
            "template": {
                "metadata": {"labels": job_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": spec.service_account or service_account_for(spec.runbook),
                    "automountServiceAccountToken": True,
                    "containers": [container],
                },
            },
        },
    }
