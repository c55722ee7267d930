"""`runbook run --on kubernetes`: submit the run as a Job (or attach to it), follow it, read its record.

1. The request is checked here first (runbook, parameters, incident id, an s3:// store, an image, no
   parameter that looks like a credential): bad input exits 2 before anything reaches the cluster.
2. The Job (runbook_kit.jobs.manifest) is created with the executor's own client
   (`clients.batch_v1_for_runs`: Jobs and their pods only). A 409 means the same submission exists:
   the executor ATTACHES to it (says so) and never creates a second one.
3. Following: the Job is watched (a watch, re-listed when it expires) while its pod's log lines are
   streamed to stderr, each prefixed `[job/NAME]` and redacted.
4. Then the record is read from S3 (found by the Job's name in incident.json) and returned as a
   `RunResult`, so `runbook run` prints the same summary and exits with the same code as a local run.
   A Job that failed without its runner ending the record gets the cause written into it
   (runbook_kit.jobs.outcome).

Ctrl-C while following DETACHES: the Job keeps running (it may be mid-mutation, and killing the pod
would not undo anything); the message says how to follow again (the same command attaches).
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from runbook_kit import catalog, clients, params, record, settings
from runbook_kit.errors import Conflict, NotFound, ParameterError, RunbookError, backend_call
from runbook_kit.jobs import manifest, outcome
from runbook_kit.jobs.executor import RunRequest
from runbook_kit.machine import read_only
from runbook_kit.redact import Redactor, is_secret_name
from runbook_kit.runner import RunResult, default_incident
from runbook_kit.store import open_store

__all__ = ["Detached", "JobRef", "JobSettings", "KubernetesExecutor"]


class Detached(RunbookError):
    """Ctrl-C while following: the Job keeps running; the message says how to follow it again."""


def _number(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a whole number of seconds, not {value!r}") from None
    if number < 0:
        raise ParameterError(f"{name} must not be negative, not {value!r}")
    return number


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """Where and how Jobs run: options > environment > runbook.yaml `jobs:` > defaults (no image default)."""

    image: str | None = None
    namespace: str | None = None  # None: the kubeconfig context's namespace
    service_account: str | None = None  # None: runbook-<runbook>
    env_from_secrets: tuple[str, ...] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ttl_seconds: int = manifest.DEFAULT_TTL
    startup_seconds: int = manifest.DEFAULT_STARTUP
    context: str | None = None
    image_pull_policy: str | None = None

    @classmethod
    def load(
        cls,
        *,
        image: str | None = None,
        namespace: str | None = None,
        service_account: str | None = None,
        environ: Mapping[str, str] | None = None,
        conf: Mapping[str, Any] | None = None,
    ) -> JobSettings:
        environ = os.environ if environ is None else environ
        conf = settings.get().jobs if conf is None else conf
        secrets = conf.get("env_from_secrets") or ()
        if isinstance(secrets, str) or not all(isinstance(s, str) for s in secrets):
            raise ParameterError("jobs.env_from_secrets in runbook.yaml must be a list of Secret names")
        return cls(
            image=image or environ.get("RUNBOOK_IMAGE") or conf.get("image") or None,
            namespace=namespace or conf.get("namespace") or None,
            service_account=service_account or conf.get("service_account") or None,
            env_from_secrets=tuple(secrets),
            env=_plain_env(conf.get("env")),
            ttl_seconds=_number(conf.get("ttl_seconds", manifest.DEFAULT_TTL), "jobs.ttl_seconds"),
            startup_seconds=_number(
                conf.get("startup_seconds", manifest.DEFAULT_STARTUP), "jobs.startup_seconds"
            ),
            context=conf.get("context") or None,
            image_pull_policy=conf.get("image_pull_policy") or None,
        )


def _plain_env(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str | int | float) for v in raw.values()):
        raise ParameterError("jobs.env in runbook.yaml must map variable names to plain values")
    return {str(k): str(v) for k, v in raw.items()}


def _refuse_credentials(values: Mapping[str, Any]) -> None:
    """A Job's arguments are readable by whoever can read Jobs: a credential there would leak."""
    plain = Redactor(())
    for key, value in values.items():
        text = f"{key}={manifest.arg_value(value)}"
        if is_secret_name(key) or plain.text(text) != text:
            raise ParameterError(
                f"parameter {key!r} looks like a credential: a Job's arguments are readable by "
                "anyone who can read Jobs; give it to the pod by reference (jobs.env_from_secrets)"
            )


@dataclasses.dataclass(frozen=True)
class JobRef:
    """A Job this executor submitted, read back from the cluster (serve's reconcile): what following it
    and reading its record need, from its name, namespace and annotations."""

    name: str
    namespace: str
    incident: str
    runbook: str
    store: str
    deadline: int = 3600
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, job: Mapping[str, Any]) -> JobRef:
        meta = job.get("metadata") or {}
        notes = meta.get("annotations") or {}
        prefix = manifest.LABEL_PREFIX
        return cls(
            name=str(meta.get("name")),
            namespace=str(meta.get("namespace")),
            incident=str(notes.get(f"{prefix}/incident")),
            runbook=str(notes.get(f"{prefix}/runbook")),
            store=str(notes.get(f"{prefix}/store")),
            deadline=int((job.get("spec") or {}).get("activeDeadlineSeconds") or 3600),
        )


Target = manifest.JobSpec | JobRef


class KubernetesExecutor:
    """Runs as Kubernetes Jobs, records on S3. Clients are injectable (tests pass their own)."""

    name = "kubernetes"

    def __init__(
        self,
        job_settings: JobSettings | None = None,
        *,
        batch: Any = None,
        pods: Any = None,
        echo: Callable[[str], None] | None = None,
        poll: float = 1.0,
        redactor: Redactor | None = None,
    ) -> None:
        self.settings = job_settings or JobSettings.load()
        self._batch, self._pods = batch, pods
        self.echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
        self.poll = poll
        self.redactor = redactor or Redactor.from_environment()
        self.job: dict[str, Any] | None = None  # the Job as last seen
        self.attached = False
        # every pod of the Job as last seen, deleted ones too: an evicted pod is deleted, and its last
        # state (the DisruptionTarget condition) is what names the cause
        self.seen: dict[str, dict[str, Any]] = {}

    @property
    def batch(self) -> Any:
        self._batch = self._batch or clients.batch_v1_for_runs(context=self.settings.context)
        return self._batch

    @property
    def pods(self) -> Any:
        self._pods = self._pods or clients.pods_for_runs(context=self.settings.context)
        return self._pods

    # --- the request -------------------------------------------------------------------------
    def spec(self, request: RunRequest) -> manifest.JobSpec:
        """The Job's spec after checking the request (RunbookError on bad input; nothing is sent)."""
        book = catalog.find(request.runbook)
        values = params.validate(params.declared(catalog.load(book.path)), dict(request.parameters))
        params.ensure_recordable(values)
        _refuse_credentials(values)
        incident = params.validate_incident_id(request.incident or default_incident())
        store = request.store or settings.get().store
        if not store.startswith("s3://"):
            raise ParameterError(
                f"--store {store!r}: --on kubernetes needs an s3:// store (a pod cannot write "
                "this machine's folder)"
            )
        open_store(store)  # a malformed s3:// location is refused here
        if not self.settings.image:
            raise ParameterError(
                "--on kubernetes needs an image: pass --image, set RUNBOOK_IMAGE or jobs.image "
                "in runbook.yaml (there is no default)"
            )
        namespace = (
            self.settings.namespace or clients.kube_context(context=self.settings.context)["namespace"]
        )
        spec = manifest.JobSpec(
            runbook=book.name,
            incident=incident,
            parameters=values,
            image=self.settings.image,
            store=store,
            namespace=namespace,
            timeout=request.timeout,
            cell_timeout=request.cell_timeout,
            run_id=request.run_id,
            service_account=self.settings.service_account,
            env_from_secrets=self.settings.env_from_secrets,
            env=self.settings.env,
            ttl_seconds=self.settings.ttl_seconds,
            startup_seconds=self.settings.startup_seconds,
            read_only=read_only(),
            started_by=_who(),
            episode=request.episode,
            image_pull_policy=self.settings.image_pull_policy,
        )
        manifest.build_job(spec)  # refuses what cannot make a safe Job
        return spec

    # --- the Job -----------------------------------------------------------------------------
    def submit(self, spec: manifest.JobSpec) -> dict[str, Any]:
        """Create the Job, or attach to the one of the same submission (409); returns it as JSON."""
        body = manifest.build_job(spec)
        try:
            with backend_call("k8s", f"create job/{spec.name}"):
                created = self.batch.create_namespaced_job(spec.namespace, body)
            self.attached = False
            self.echo(
                f"runbook: submitted job/{spec.name} in namespace {spec.namespace} (image {spec.image})"
            )
            return dict(clients.k8s_json(created))
        except Conflict:
            pass
        existing = self.read_job(spec)
        self.attached = True
        state = outcome.job_state(existing)
        self.echo(
            f"runbook: job/{spec.name} in namespace {spec.namespace} exists (the same submission; "
            f"{state}): attaching to it, not running it again (pass --run-id to run it once more)"
        )
        return existing

    def read_job(self, spec: Target) -> dict[str, Any]:
        with backend_call("k8s", f"read job/{spec.name}"):
            return dict(clients.k8s_json(self.batch.read_namespaced_job(spec.name, spec.namespace)))

    def wait(self, spec: Target) -> dict[str, Any]:
        """The Job once it has finished (Complete or Failed): a watch, re-listed when it expires."""
        while True:
            job = self.read_job(spec)
            self.job = job
            if outcome.job_state(job) != "running":
                return job
            version = (job.get("metadata") or {}).get("resourceVersion")
            try:
                for _kind, obj in clients.k8s_watch(
                    self.batch.list_namespaced_job,
                    spec.namespace,
                    field_selector=f"metadata.name={spec.name}",
                    resource_version=version,
                    timeout_seconds=30,
                ):
                    if (obj.get("metadata") or {}).get("name") == spec.name:
                        self.job = obj
                        if outcome.job_state(obj) != "running":
                            return dict(obj)
            except NotFound:  # 410 Gone: the watch's resourceVersion expired; list again
                continue
            except RunbookError as exc:  # a watch that cannot be held: read again after a pause
                self.echo(f"runbook: watching job/{spec.name} failed ({exc}); reading it again")
                time.sleep(self.poll)

    def job_pods(self, spec: Target) -> list[dict[str, Any]]:
        with backend_call("k8s", f"list the pods of job/{spec.name}"):
            found = self.pods.list_namespaced_pod(spec.namespace, label_selector=f"job-name={spec.name}")
        for pod in clients.k8s_json(found).get("items") or []:
            self.seen[pod["metadata"]["name"]] = pod
        return sorted(
            self.seen.values(), key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or ""
        )

    def track_pods(self, spec: Target, done: threading.Event) -> None:
        """Watch the Job's pods until it is done, keeping each one's last state (DELETED included)."""
        while not done.is_set():
            try:
                for _kind, pod in clients.k8s_watch(
                    self.pods.list_namespaced_pod,
                    spec.namespace,
                    label_selector=f"job-name={spec.name}",
                    timeout_seconds=5,
                ):
                    self.seen[pod["metadata"]["name"]] = pod
                    if done.is_set():
                        return
            except RunbookError:
                done.wait(self.poll)

    def job_warning(self, spec: Target) -> str | None:
        """The Job's latest Warning event (e.g. FailedCreate: its ServiceAccount does not exist)."""
        try:
            with backend_call("k8s", f"list the events of job/{spec.name}"):
                found = self.pods.list_namespaced_event(
                    spec.namespace, field_selector=f"involvedObject.name={spec.name}"
                )
        except RunbookError:
            return None
        warnings = [e for e in clients.k8s_json(found).get("items") or [] if e.get("type") == "Warning"]
        if not warnings:
            return None
        last = max(warnings, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        text = " ".join(str(last.get("message") or "").split())[:300]
        hint = ""
        if "service account" in text and "not found" in text:
            hint = f"; create it with `runbook rbac {spec.runbook}` (kubectl apply)"
        return f"{last.get('reason')}: {self.redactor.text(text)}{hint}"

    def stream_logs(self, spec: Target, done: threading.Event) -> None:
        """Each pod's log lines, as they come, to `echo` (prefixed, redacted), until the Job is done."""
        followed: set[str] = set()
        told: set[str] = set()
        since = time.monotonic()
        while not done.is_set():
            try:
                pods = self.job_pods(spec)
            except RunbookError:
                pods = []
            stuck = outcome.start_problem(pods)
            if not pods and time.monotonic() - since > 3 * self.poll:
                stuck = self.job_warning(spec)
            if stuck and stuck not in told:
                told.add(stuck)
                self.echo(f"runbook: job/{spec.name}: {stuck} (still following; Ctrl-C detaches)")
            ready = [
                p
                for p in pods
                if p["metadata"]["name"] not in followed
                and (p.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed")
            ]
            if not ready:
                done.wait(self.poll)
                continue
            pod = ready[0]["metadata"]["name"]
            followed.add(pod)
            self._follow_pod(spec, pod)

    def _follow_pod(self, spec: Target, pod: str) -> None:
        prefix = f"[job/{spec.name}] "
        try:
            response = self.pods.read_namespaced_pod_log(
                pod,
                spec.namespace,
                container=manifest.CONTAINER,
                follow=True,
                _preload_content=False,
                _request_timeout=(5, spec.deadline + 60),
            )
            with contextlib.closing(response):
                buffer = b""
                for chunk in response.stream(4096):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        self.echo(prefix + self.redactor.text(line.decode(errors="replace").rstrip("\r")))
                if buffer:
                    self.echo(prefix + self.redactor.text(buffer.decode(errors="replace")))
        except Exception as exc:  # logs are a courtesy; the record is the account
            self.echo(
                f"runbook: the logs of pod {pod} could not be read ({type(exc).__name__}: "
                f"{self.redactor.text(str(exc))[:200]})"
            )

    # --- the run -----------------------------------------------------------------------------
    def run(self, request: RunRequest) -> RunResult:
        spec = self.spec(request)
        self.job = self.submit(spec)
        done = threading.Event()
        logs = threading.Thread(target=self.stream_logs, args=(spec, done), daemon=True)
        logs.start()
        threading.Thread(target=self.track_pods, args=(spec, done), daemon=True).start()
        try:
            job = self.wait(spec)
            done.set()  # the pod has ended: its log stream ends too; the last lines are still read
            logs.join(timeout=10)
            return self.result(spec, job)
        except RunbookError as exc:  # submitted: whatever fails now, the Job may be running
            exc.after_start = True  # type: ignore[attr-defined]
            raise
        except KeyboardInterrupt:
            done.set()
            raise Detached(
                f"detached from job/{spec.name} (namespace {spec.namespace}); it keeps running. Follow it "
                f"again with the same command, or `kubectl logs -f job/{spec.name} -n {spec.namespace}`; "
                f"its record: `runbook status {spec.incident} --store {spec.store}`"
            ) from None
        finally:
            done.set()

    def result(self, spec: Target, job: Mapping[str, Any]) -> RunResult:
        """The run's result from its record in S3, after writing the Job's failure cause into it if needed."""
        store = open_store(spec.store)
        if outcome.job_state(job) == "failed":
            pods = self.job_pods(spec)
            cause = outcome.cause_of(job, pods)
            if cause:
                ended = outcome.finalize(
                    store,
                    incident=spec.incident,
                    job=job,
                    cause=cause,
                    runbook=spec.runbook,
                    runner_started=outcome.runner_started(pods),
                )
                if ended.get("job_failure"):  # the runner could not end its record: the Job's status did
                    self.echo(f"runbook: job/{spec.name} failed: {cause}")
        raw = store.read(f"{spec.incident}/incident.json")
        run = outcome.find_run(json.loads(raw), spec.name) if raw else None
        if run is None:
            return RunResult(
                runbook=spec.runbook,
                incident=spec.incident,
                status="failed",
                notebook_path="",
                html_path=None,
                entries=[],
                parameters=dict(spec.parameters),
                failure=f"job/{spec.name} finished but its run is not in {spec.store}",
            )
        body = store.read(f"{run['record_id']}.ipynb") if run.get("notebook") else None
        nb = json.loads(body) if body else {"cells": []}
        return RunResult(
            runbook=spec.runbook,
            incident=spec.incident,
            status=str(run.get("status")),
            notebook_path=str(run.get("notebook") or ""),
            html_path=run.get("html"),
            entries=record.read_entries(nb),
            failure=run.get("failure"),
            failed_cell=(nb.get("metadata") or {}).get("runbook_kit", {}).get("failed_cell"),
            parameters=run.get("parameters") or {},
        )


def _who() -> str | None:
    with contextlib.suppress(Exception):
        return os.environ.get("RUNBOOK_STARTED_BY") or getpass.getuser()
    return None
