"""batch/v1 Jobs on the sandbox's Kubernetes: the official client and kubectl against a real server whose
kubelet runs each Job pod's container as a local process (the venv's python with a few lines).

One server for the module (tick 0.1 s, back-off 0.2 s); every test works in a namespace of its own.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from k8s_harness import Sandbox, port_open, start, stop

pytestmark = pytest.mark.sandbox

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
needs_kubectl = pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl is not installed")


AWS_URL = "http://127.0.0.1:4566"


@pytest.fixture(scope="module")
def jobs_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    state = tmp_path_factory.mktemp("k8s-jobs")
    (state / "aws-url").write_text(AWS_URL)  # what the AWS part would write: Job pods get it
    sandbox = start(
        state,
        "--scenario",
        "none",
        "--tick",
        "0.1",
        "--job-backoff",
        "0.2",
        "--pod-aws-url-file",
        str(state / "aws-url"),
    )
    yield sandbox
    assert stop(sandbox) == 0
    assert not port_open(sandbox.port)


@pytest.fixture
def ns(jobs_cluster: Sandbox) -> str:
    from kubernetes import client

    name = f"jobs-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(jobs_cluster.api_client()).create_namespace({"metadata": {"name": name}})
    deadline = time.monotonic() + 5
    core = client.CoreV1Api(jobs_cluster.api_client())
    while not core.list_namespaced_service_account(name).items:  # the ServiceAccount controller's `default`
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return name


def job(name: str, code: str, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": "runbook-kit:dev",
        "command": ["python", "-c", code],
    }
    container.update(spec.pop("container", {}))
    pod_spec = {"restartPolicy": "Never", "containers": [container], **spec.pop("pod", {})}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"spec": pod_spec}, **spec},
    }


def batch(sandbox: Sandbox) -> Any:
    from kubernetes import client

    return client.BatchV1Api(sandbox.api_client())


def core(sandbox: Sandbox) -> Any:
    from kubernetes import client

    return client.CoreV1Api(sandbox.api_client())


def wait_for(check: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def finished(sandbox: Sandbox, ns: str, name: str, timeout: float = 15) -> Any:
    def done() -> Any:
        j = batch(sandbox).read_namespaced_job(name, ns)
        kinds = {c.type for c in j.status.conditions or [] if c.status == "True"}
        return j if kinds & {"Complete", "Failed"} else None

    return wait_for(done, timeout)


def conditions(j: Any) -> list[tuple[str, str]]:
    return [(c.type, c.reason) for c in j.status.conditions]


def pods_of(sandbox: Sandbox, ns: str, name: str) -> list[Any]:
    return list(
        core(sandbox).list_namespaced_pod(ns, label_selector=f"batch.kubernetes.io/job-name={name}").items
    )


def events_of(sandbox: Sandbox, ns: str, name: str) -> list[tuple[str, str, str]]:
    found = core(sandbox).list_namespaced_event(ns, field_selector=f"involvedObject.name={name}").items
    return sorted((e.type, e.reason, e.message) for e in found)


def kubectl(sandbox: Sandbox, *args: str) -> str:
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", sandbox.kubeconfig, *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def bind(sandbox: Sandbox, ns: str, sa: str, *, role: str, kind: str = "Role") -> None:
    from kubernetes import client

    client.RbacAuthorizationV1Api(sandbox.api_client()).create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": f"{sa}-{role}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
        },
    )


SELF_READ = """
import json, os, urllib.request
config = json.load(open(os.environ["KUBECONFIG"]))
server, token = config["clusters"][0]["cluster"]["server"], config["users"][0]["user"]["token"]
ns, me = os.environ["MY_NAMESPACE"], os.environ["HOSTNAME"]
req = urllib.request.Request(f"{server}/api/v1/namespaces/{ns}/pods/{me}",
                             headers={"Authorization": f"Bearer {token}"})
pod = json.load(urllib.request.urlopen(req))
env = os.environ
print("pod", pod["metadata"]["name"], "password", env["DB_PASSWORD"], "mode", env["MODE"], flush=True)
print("to stderr", file=__import__("sys").stderr)
import shutil, sys
print(json.dumps([sys.executable, shutil.which("runbook"), env["AWS_ENDPOINT_URL"], env["AWS_REGION"]]),
      file=open(os.environ["REPORT"], "w"))
"""


def test_a_job_runs_its_command_as_a_process_and_completes(
    jobs_cluster: Sandbox, ns: str, tmp_path: Path
) -> None:
    core(jobs_cluster).create_namespaced_secret(
        ns, {"metadata": {"name": "db"}, "data": {"password": base64.b64encode(b"s3cret").decode()}}
    )
    core(jobs_cluster).create_namespaced_config_map(
        ns, {"metadata": {"name": "cfg"}, "data": {"mode": "dry"}}
    )
    env = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
        {"name": "MY_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "REPORT", "value": str(tmp_path / "report.json")},
    ]
    bind(jobs_cluster, ns, "default", role="view", kind="ClusterRole")  # it may read its own pod
    created = batch(jobs_cluster).create_namespaced_job(ns, job("hello", SELF_READ, container={"env": env}))
    uid = created.metadata.uid
    assert created.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}
    assert created.spec.backoff_limit == 6 and created.spec.completions == 1

    j = finished(jobs_cluster, ns, "hello")
    assert conditions(j) == [("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")]
    assert (j.status.succeeded, j.status.failed, j.status.active) == (1, None, 0)
    assert j.status.start_time and j.status.completion_time
    [pod] = pods_of(jobs_cluster, ns, "hello")
    name = pod.metadata.name
    assert name.startswith("hello-") and len(name) == len("hello-") + 5
    assert {
        "batch.kubernetes.io/job-name": "hello",
        "job-name": "hello",
        "controller-uid": uid,
        "batch.kubernetes.io/controller-uid": uid,
    }.items() <= pod.metadata.labels.items()
    [owner] = pod.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Job", "hello", uid, True)
    assert pod.status.phase == "Succeeded"
    term = pod.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (0, "Completed") and term.started_at <= term.finished_at

    log = core(jobs_cluster).read_namespaced_pod_log(name, ns)
    assert log == f"pod {name} password s3cret mode dry\nto stderr\n"
    assert core(jobs_cluster).read_namespaced_pod_log(name, ns, tail_lines=1) == "to stderr\n"
    stamped = core(jobs_cluster).read_namespaced_pod_log(name, ns, timestamps=True).splitlines()
    assert stamped[0].endswith(f" pod {name} password s3cret mode dry") and stamped[0][:4].isdigit()
    # the process read its own pod with its ServiceAccount's token: the request log names that identity
    reads = [e for e in jobs_cluster.requests() if e["path"] == f"/api/v1/namespaces/{ns}/pods/{name}"]
    assert reads[0]["user"] == f"system:serviceaccount:{ns}:default"
    assert ("Normal", "SuccessfulCreate", f"Created pod: {name}") in events_of(jobs_cluster, ns, "hello")
    assert ("Normal", "Completed", "Job completed") in events_of(jobs_cluster, ns, "hello")
    # the kit's image stand-in: the sandbox's Python and its `runbook` first; AWS as IRSA would give it
    python, runbook, aws, region = json.loads((tmp_path / "report.json").read_text())
    assert python == sys.executable and runbook == str(Path(sys.executable).parent / "runbook")
    assert (aws, region) == (AWS_URL, "us-east-1")


@pytest.mark.kubectl
@needs_kubectl
def test_kubectl_get_jobs_and_logs_job(jobs_cluster: Sandbox, ns: str) -> None:
    code = "import time\nfor i in range(3):\n    print('line', i, flush=True)\n    time.sleep(0.3)"
    batch(jobs_cluster).create_namespaced_job(ns, job("tail", code))
    wait_for(lambda: pods_of(jobs_cluster, ns, "tail"))
    followed = kubectl(jobs_cluster, "logs", "-f", "-n", ns, "job/tail")  # streams until the process ends
    assert followed == "line 0\nline 1\nline 2\n"
    finished(jobs_cluster, ns, "tail")
    table = kubectl(jobs_cluster, "get", "jobs", "-n", ns).splitlines()
    assert table[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert table[1].split()[:3] == ["tail", "Complete", "1/1"]
    assert kubectl(jobs_cluster, "logs", "-n", ns, "job/tail", "--tail", "1") == "line 2\n"


def test_a_duplicate_name_is_409_already_exists(jobs_cluster: Sandbox, ns: str) -> None:
    from kubernetes.client import ApiException

    batch(jobs_cluster).create_namespaced_job(ns, job("once", "pass"))
    with pytest.raises(ApiException) as err:
        batch(jobs_cluster).create_namespaced_job(ns, job("once", "pass"))
    assert err.value.status == 409
    body = json.loads(err.value.body)
    assert (body["kind"], body["reason"], body["message"]) == (
        "Status",
        "AlreadyExists",
        'jobs.batch "once" already exists',
    )
    assert body["details"] == {"name": "once", "group": "batch", "kind": "jobs"}
    finished(jobs_cluster, ns, "once")
    assert len(pods_of(jobs_cluster, ns, "once")) == 1


@pytest.mark.parametrize(("limit", "pods"), [(0, 1), (1, 2)])
def test_backoff_limit_bounds_the_pods_of_a_failing_command(
    jobs_cluster: Sandbox, ns: str, limit: int, pods: int
) -> None:
    batch(jobs_cluster).create_namespaced_job(ns, job("fails", "import sys; sys.exit(3)", backoffLimit=limit))
    j = finished(jobs_cluster, ns, "fails")
    assert conditions(j) == [("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")]
    assert j.status.conditions[1].message == "Job has reached the specified backoff limit"
    assert (j.status.failed, j.status.succeeded, j.status.completion_time) == (pods, None, None)
    found = pods_of(jobs_cluster, ns, "fails")
    assert len(found) == pods
    for pod in found:
        term = pod.status.container_statuses[0].state.terminated
        assert (pod.status.phase, term.exit_code, term.reason) == ("Failed", 3, "Error")
    warning = ("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert warning in events_of(jobs_cluster, ns, "fails")


def test_past_its_deadline_the_process_is_ended_and_the_job_fails(jobs_cluster: Sandbox, ns: str) -> None:
    code = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)"
    spec = job(
        "slow", code, activeDeadlineSeconds=1, backoffLimit=0, pod={"terminationGracePeriodSeconds": 1}
    )
    batch(jobs_cluster).create_namespaced_job(ns, spec)
    [pod] = wait_for(lambda: pods_of(jobs_cluster, ns, "slow"))
    pid = int(wait_for(lambda: core(jobs_cluster).read_namespaced_pod_log(pod.metadata.name, ns)).split()[0])
    assert psutil.pid_exists(pid)
    j = finished(jobs_cluster, ns, "slow")
    assert conditions(j) == [("FailureTarget", "DeadlineExceeded"), ("Failed", "DeadlineExceeded")]
    assert j.status.conditions[1].message == "Job was active longer than specified deadline"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert j.status.failed == 1 and j.status.active == 0
    assert pods_of(jobs_cluster, ns, "slow") == []  # the controller deleted it
    reasons = {reason for _, reason, _ in events_of(jobs_cluster, ns, "slow")}
    assert {"SuccessfulCreate", "SuccessfulDelete", "DeadlineExceeded"} <= reasons


def test_an_evicted_pod_with_a_failjob_policy_fails_the_job_and_is_not_rerun(
    jobs_cluster: Sandbox, ns: str
) -> None:
    policy = {"rules": [{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    spec = job("mutate", "import time; time.sleep(60)", backoffLimit=3, podFailurePolicy=policy)
    batch(jobs_cluster).create_namespaced_job(ns, spec)
    [pod] = wait_for(lambda: [p for p in pods_of(jobs_cluster, ns, "mutate") if p.status.phase == "Running"])
    name = pod.metadata.name
    core(jobs_cluster).create_namespaced_pod_eviction(
        name, ns, {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}}
    )
    j = finished(jobs_cluster, ns, "mutate")
    assert conditions(j) == [("FailureTarget", "PodFailurePolicy"), ("Failed", "PodFailurePolicy")]
    assert j.status.conditions[1].message == (
        f"Pod {ns}/{name} has condition DisruptionTarget matching FailJob rule at index 0"
    )
    time.sleep(0.5)  # a few controller passes: no replacement pod appears
    assert pods_of(jobs_cluster, ns, "mutate") == []
    assert batch(jobs_cluster).read_namespaced_job("mutate", ns).status.failed == 1
    created = [e for e in events_of(jobs_cluster, ns, "mutate") if e[1] == "SuccessfulCreate"]
    assert len(created) == 1


def test_an_exit_code_rule_can_ignore_a_failure_or_fail_at_once(jobs_cluster: Sandbox, ns: str) -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    batch(jobs_cluster).create_namespaced_job(
        ns, job("code", "raise SystemExit(42)", podFailurePolicy=policy)
    )
    j = finished(jobs_cluster, ns, "code")
    [pod] = pods_of(jobs_cluster, ns, "code")
    assert conditions(j)[-1] == ("Failed", "PodFailurePolicy") and j.status.failed == 1
    assert j.status.conditions[-1].message == (
        f"Container main for pod {ns}/{pod.metadata.name} failed with exit code 42 "
        "matching FailJob rule at index 0"
    )


def test_ttl_after_finished_deletes_the_job_and_its_pods(jobs_cluster: Sandbox, ns: str) -> None:
    from kubernetes.client import ApiException

    batch(jobs_cluster).create_namespaced_job(ns, job("short", "pass", ttlSecondsAfterFinished=1))
    finished(jobs_cluster, ns, "short")
    assert len(pods_of(jobs_cluster, ns, "short")) == 1

    def gone() -> bool:
        try:
            batch(jobs_cluster).read_namespaced_job("short", ns)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, timeout=10)
    assert pods_of(jobs_cluster, ns, "short") == []


def test_a_watch_sees_the_jobs_transitions(jobs_cluster: Sandbox, ns: str) -> None:
    from kubernetes import watch

    api = batch(jobs_cluster)
    rv = api.list_namespaced_job(ns).metadata.resource_version
    api.create_namespaced_job(ns, job("watched", "import time; time.sleep(0.3)"))
    seen: list[tuple[str, int, tuple[str, ...]]] = []
    for event in watch.Watch().stream(api.list_namespaced_job, ns, resource_version=rv, timeout_seconds=15):
        j = event["object"]
        kinds = tuple(c.type for c in j.status.conditions or [])
        seen.append((event["type"], j.status.active or 0, kinds))
        if "Complete" in kinds:
            break
    assert seen[0] == ("ADDED", 0, ())
    assert ("MODIFIED", 1, ()) in seen
    assert seen[-1] == ("MODIFIED", 0, ("SuccessCriteriaMet", "Complete"))


def test_delete_propagation_ends_or_keeps_the_pods(jobs_cluster: Sandbox, ns: str) -> None:
    code = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)"
    api = batch(jobs_cluster)
    for name in ("fg", "orphan", "bg"):
        api.create_namespaced_job(ns, job(name, code, pod={"terminationGracePeriodSeconds": 1}))
    pids = {}
    for name in ("fg", "orphan", "bg"):
        [pod] = wait_for(lambda n=name: pods_of(jobs_cluster, ns, n))
        pids[name] = int(
            wait_for(lambda p=pod: core(jobs_cluster).read_namespaced_pod_log(p.metadata.name, ns))
        )
    # metrics.k8s.io measures the real processes (kubectl top): python's resident memory, not a model's
    from kubernetes import client

    custom = client.CustomObjectsApi(jobs_cluster.api_client())
    usage = custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", ns, "pods")["items"]
    assert len(usage) == 3
    for item in usage:
        pid = pids[item["metadata"]["labels"]["job-name"]]
        memory_kib = int(item["containers"][0]["usage"]["memory"].removesuffix("Ki"))
        rss_kib = psutil.Process(pid).memory_info().rss // 1024
        assert abs(memory_kib - rss_kib) < rss_kib // 4
    api.delete_namespaced_job("fg", ns, propagation_policy="Foreground")
    api.delete_namespaced_job("orphan", ns)  # batch/v1's default: Orphan
    api.delete_namespaced_job("bg", ns, propagation_policy="Background")  # what kubectl sends
    wait_for(lambda: not pods_of(jobs_cluster, ns, "fg"))
    wait_for(lambda: not pods_of(jobs_cluster, ns, "bg"))  # the garbage collector's pass
    for name in ("fg", "bg"):
        assert (
            not psutil.pid_exists(pids[name]) or psutil.Process(pids[name]).status() == psutil.STATUS_ZOMBIE
        )
    [orphan] = pods_of(jobs_cluster, ns, "orphan")
    assert orphan.metadata.owner_references is None and psutil.pid_exists(pids["orphan"])
    core(jobs_cluster).delete_namespaced_pod(orphan.metadata.name, ns)
    wait_for(lambda: not pods_of(jobs_cluster, ns, "orphan"))
    wait_for(
        lambda: not psutil.pid_exists(pids["orphan"]) or psutil.Process(pids["orphan"]).status() == "zombie"
    )


def test_what_the_sandbox_cannot_run_is_refused_clearly(jobs_cluster: Sandbox, ns: str) -> None:
    from kubernetes.client import ApiException

    api = batch(jobs_cluster)
    with pytest.raises(ApiException) as err:
        api.create_namespaced_job(ns, job("always", "pass", pod={"restartPolicy": "Always"}))
    assert err.value.status == 422 and "spec.template.spec.restartPolicy" in err.value.body
    with pytest.raises(ApiException) as err:
        api.create_namespaced_job(ns, job("indexed", "pass", completionMode="Indexed"))
    assert err.value.status == 422 and "spec.completionMode" in err.value.body
    # a ServiceAccount that does not exist: no pod, the controller's FailedCreate event
    api.create_namespaced_job(ns, job("nosa", "pass", pod={"serviceAccountName": "missing"}))
    wait_for(lambda: any(e[1] == "FailedCreate" for e in events_of(jobs_cluster, ns, "nosa")))
    assert pods_of(jobs_cluster, ns, "nosa") == []
    # volumes: the pod fails with a Warning event instead of running without them
    volumes = {"volumes": [{"name": "data", "emptyDir": {}}]}
    api.create_namespaced_job(ns, job("vol", "pass", backoffLimit=0, pod=volumes))
    j = finished(jobs_cluster, ns, "vol")
    assert conditions(j)[-1] == ("Failed", "BackoffLimitExceeded")
    [pod] = pods_of(jobs_cluster, ns, "vol")
    assert pod.status.reason == "UnsupportedPodSpec" and "volumes are not supported" in pod.status.message
    warnings = [(kind, reason) for kind, reason, message in events_of(jobs_cluster, ns, pod.metadata.name)]
    assert ("Warning", "FailedMount") in warnings
    # a command that does not exist: StartError, exit code 128
    missing = job("missing", "", backoffLimit=0, container={"command": ["no-such-program-here"]})
    api.create_namespaced_job(ns, missing)
    finished(jobs_cluster, ns, "missing")
    [pod] = pods_of(jobs_cluster, ns, "missing")
    term = pod.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (128, "StartError") and "no-such-program-here" in term.message


PROBE = """
import json, os, urllib.error, urllib.request
config = json.load(open(os.environ["KUBECONFIG"]))
server, token = config["clusters"][0]["cluster"]["server"], config["users"][0]["user"]["token"]
ns = os.environ["MY_NAMESPACE"]
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server + path, data=data, method=method, headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(req).status, ""
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)["message"]
review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
          "spec": {"resourceAttributes": {"verb": "delete", "resource": "pods", "namespace": ns}}}
print(json.dumps({
    "list pods": call("GET", f"/api/v1/namespaces/{ns}/pods"),
    "get own pod": call("GET", f"/api/v1/namespaces/{ns}/pods/" + os.environ["HOSTNAME"]),
    "list secrets": call("GET", f"/api/v1/namespaces/{ns}/secrets"),
    "list pods elsewhere": call("GET", "/api/v1/namespaces/default/pods"),
    "list nodes": call("GET", "/api/v1/nodes"),
    "discovery": call("GET", "/apis/batch/v1"),
    "review": call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review),
}), flush=True)
"""


def test_a_service_account_gets_only_what_its_role_allows(jobs_cluster: Sandbox, ns: str) -> None:
    from kubernetes import client

    rbac_api = client.RbacAuthorizationV1Api(jobs_cluster.api_client())
    core(jobs_cluster).create_namespaced_service_account(ns, {"metadata": {"name": "runner"}})
    rule = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
    rbac_api.create_namespaced_role(ns, {"metadata": {"name": "pod-reader"}, "rules": [rule]})
    bind(jobs_cluster, ns, "runner", role="pod-reader")
    env = [{"name": "MY_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
    spec = job("probe", PROBE, container={"env": env}, pod={"serviceAccountName": "runner"})
    batch(jobs_cluster).create_namespaced_job(ns, spec)
    assert conditions(finished(jobs_cluster, ns, "probe"))[-1][0] == "Complete"
    [pod] = pods_of(jobs_cluster, ns, "probe")
    answers = json.loads(core(jobs_cluster).read_namespaced_pod_log(pod.metadata.name, ns))
    user = f"system:serviceaccount:{ns}:runner"
    assert answers == {
        "list pods": [200, ""],
        "get own pod": [200, ""],
        "list secrets": [
            403,
            f'secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" '
            f'in the namespace "{ns}"',
        ],
        "list pods elsewhere": [
            403,
            f'pods is forbidden: User "{user}" cannot list resource "pods" in API group "" '
            'in the namespace "default"',
        ],
        "list nodes": [
            403,
            f'nodes is forbidden: User "{user}" cannot list resource "nodes" in API group "" '
            "at the cluster scope",
        ],
        "discovery": [200, ""],
        "review": [201, ""],
    }
    denied = [e for e in jobs_cluster.requests() if e["user"] == user and e["status"] == 403]
    assert len(denied) == 3


LEAVES_A_KERNEL = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
print(child.pid, flush=True)
"""


def test_what_a_container_leaves_running_ends_with_it(jobs_cluster: Sandbox, ns: str) -> None:
    # like a Jupyter kernel: a child in a session of its own, still running when the main process exits
    batch(jobs_cluster).create_namespaced_job(ns, job("leaves", LEAVES_A_KERNEL))
    assert conditions(finished(jobs_cluster, ns, "leaves"))[-1][0] == "Complete"
    [pod] = pods_of(jobs_cluster, ns, "leaves")
    child = int(core(jobs_cluster).read_namespaced_pod_log(pod.metadata.name, ns))
    wait_for(lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE)


def test_completions_run_pods_until_that_many_succeeded(jobs_cluster: Sandbox, ns: str) -> None:
    batch(jobs_cluster).create_namespaced_job(ns, job("thrice", "pass", completions=3, parallelism=2))
    j = finished(jobs_cluster, ns, "thrice")
    assert conditions(j)[-1][0] == "Complete" and j.status.succeeded == 3
    assert len(pods_of(jobs_cluster, ns, "thrice")) == 3


def test_a_jobs_metadata_can_be_patched_its_template_cannot(jobs_cluster: Sandbox, ns: str) -> None:
    from kubernetes.client import ApiException

    api = batch(jobs_cluster)
    api.create_namespaced_job(ns, job("patched", "pass"))
    labelled = api.patch_namespaced_job("patched", ns, {"metadata": {"labels": {"incident": "INC-7"}}})
    assert labelled.metadata.labels["incident"] == "INC-7"
    assert [j.metadata.name for j in api.list_namespaced_job(ns, label_selector="incident=INC-7").items] == [
        "patched"
    ]
    change = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "other:1"}]}}}}
    with pytest.raises(ApiException) as err:
        api.patch_namespaced_job("patched", ns, change)
    assert err.value.status == 422 and "spec.template: Invalid value: field is immutable" in err.value.body
