"""The official kubernetes python client against the sandbox: every endpoint runbooks use."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from runbook_sandbox import timeline as tl

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def api(cluster: Any) -> Any:
    return cluster.api_client()


@pytest.fixture(scope="module")
def core(api: Any) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def apps(api: Any) -> client.AppsV1Api:
    return client.AppsV1Api(api)


def _deployment(
    name: str, replicas: int = 2, image: str = "public.ecr.aws/nginx/nginx:1.27"
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "env": [{"name": "A", "value": "1"}],
                            "resources": {"limits": {"memory": "64Mi"}},
                        }
                    ]
                },
            },
        },
    }


def _raw(
    api: Any, method: str, path: str, *, body: Any = None, content_type: str = "application/json"
) -> tuple[int, Any]:
    """One request through the client's REST layer (for patch types the typed API does not expose)."""
    response = api.call_api(
        method,
        api.configuration.host + path,
        body=body,
        header_params={"Content-Type": content_type, "Accept": "application/json"},
    )
    response.read()
    return response.status, json.loads(response.data or b"null")


def _wait(predicate: Any, *, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def scratch(core: client.CoreV1Api) -> str:
    core.create_namespace({"metadata": {"name": "scratch"}})
    return "scratch"


# --- reads ---------------------------------------------------------------------------------------


def test_version_and_nodes(api: Any, core: client.CoreV1Api) -> None:
    assert client.VersionApi(api).get_code().git_version.startswith("v1.32")
    nodes = core.list_node().items
    assert len(nodes) == 3
    for node in nodes:
        assert node.metadata.labels["topology.kubernetes.io/zone"].startswith("us-east-1")
        assert {c.type for c in node.status.conditions} == {
            "Ready",
            "MemoryPressure",
            "DiskPressure",
            "PIDPressure",
        }
        assert node.status.allocatable["cpu"] == "3920m"


def test_crashloop_pod_status(core: client.CoreV1Api) -> None:
    pods = core.list_namespaced_pod(tl.CRASHLOOP_NAMESPACE, label_selector="app=api").items
    crashing = [p for p in pods if p.status.container_statuses[0].state.waiting]
    running = [p for p in pods if p.status.container_statuses[0].ready]
    assert len(crashing) == 1 and len(running) == 3  # maxSurge 1, maxUnavailable 0: the rollout stalls
    cs = crashing[0].status.container_statuses[0]
    assert cs.state.waiting.reason == "CrashLoopBackOff"
    assert cs.state.waiting.message.startswith("back-off ")
    assert cs.last_state.terminated.reason == "OOMKilled" and cs.last_state.terminated.exit_code == 137
    assert cs.restart_count >= 6  # ~25 minutes of real back-off (10s, 20s, ... 5m)
    assert crashing[0].spec.containers[0].resources.limits["memory"] == tl.CRASHLOOP_BAD_LIMIT


def test_crashloop_deployment_status(apps: client.AppsV1Api) -> None:
    d = apps.read_namespaced_deployment(tl.CRASHLOOP_DEPLOYMENT, tl.CRASHLOOP_NAMESPACE)
    assert d.status.unavailable_replicas == 1 and d.status.available_replicas == 3
    assert d.status.updated_replicas == 1
    conditions = {c.type: c for c in d.status.conditions}
    assert conditions["Progressing"].status == "False"
    assert conditions["Progressing"].reason == "ProgressDeadlineExceeded"
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    rs = apps.list_namespaced_replica_set(tl.CRASHLOOP_NAMESPACE, label_selector="app=api").items
    revisions = sorted(int(r.metadata.annotations["deployment.kubernetes.io/revision"]) for r in rs)
    assert revisions == [1, 2, 3]
    newest = max(rs, key=lambda r: int(r.metadata.annotations["deployment.kubernetes.io/revision"]))
    assert tl.CRASHLOOP_BAD_LIMIT in newest.metadata.annotations["kubernetes.io/change-cause"]
    assert newest.metadata.owner_references[0].uid == d.metadata.uid
    assert newest.metadata.name == f"api-{newest.metadata.labels['pod-template-hash']}"


def test_events_field_selector(core: client.CoreV1Api) -> None:
    pod = next(
        p
        for p in core.list_namespaced_pod(tl.CRASHLOOP_NAMESPACE, label_selector="app=api").items
        if p.status.container_statuses[0].state.waiting
    )
    events = core.list_namespaced_event(
        tl.CRASHLOOP_NAMESPACE,
        field_selector=f"involvedObject.name={pod.metadata.name},involvedObject.uid={pod.metadata.uid}",
    ).items
    by_reason = {e.reason: e for e in events}
    assert {"Scheduled", "Pulled", "Created", "Started", "BackOff"} <= set(by_reason)
    assert by_reason["BackOff"].type == "Warning" and by_reason["BackOff"].count > 10
    assert by_reason["Started"].count == pod.status.container_statuses[0].restart_count + (
        0 if pod.status.container_statuses[0].state.waiting else 1
    )
    assert all(e.involved_object.name == pod.metadata.name for e in events)


def test_label_selectors(core: client.CoreV1Api) -> None:
    def names(selector: str) -> set[str]:
        return {
            p.metadata.labels["app"]
            for p in core.list_pod_for_all_namespaces(label_selector=selector).items
            if "app" in p.metadata.labels
        }

    assert names("app in (api, worker)") == {"api", "worker"}
    assert names("app notin (api, worker),app") == {"checkout", "frontend"}
    assert names("app!=api,app==worker") == {"worker"}
    k8s_app = core.list_pod_for_all_namespaces(label_selector="!app").items
    assert {p.metadata.labels.get("k8s-app") for p in k8s_app} == {"kube-dns", "kube-proxy"}


def test_field_selectors_and_unsupported_field(core: client.CoreV1Api) -> None:
    node = core.list_node().items[0].metadata.name
    on_node = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    assert on_node and all(p.spec.node_name == node for p in on_node)
    running = core.list_pod_for_all_namespaces(
        field_selector="status.phase=Running,metadata.namespace=storefront"
    )
    assert {p.metadata.namespace for p in running.items} == {"storefront"}
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod("payments", field_selector="spec.bogus=1")
    assert err.value.status == 400


def test_pagination_walks_every_pod_once(core: client.CoreV1Api) -> None:
    everything = {p.metadata.uid for p in core.list_pod_for_all_namespaces().items}
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_pod_for_all_namespaces(limit=3, _continue=token)
        pages += 1
        assert len(page.items) <= 3
        seen += [p.metadata.uid for p in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert pages >= 4 and len(seen) == len(set(seen)) and set(seen) == everything


def test_raw_list_and_resource_versions(core: client.CoreV1Api) -> None:
    response = core.list_namespaced_pod("payments", _preload_content=False)
    doc = json.loads(response.data)
    assert doc["kind"] == "PodList" and int(doc["metadata"]["resourceVersion"]) > 0
    for item in doc["items"]:
        assert int(item["metadata"]["resourceVersion"]) <= int(doc["metadata"]["resourceVersion"])
        assert item["metadata"]["uid"] and item["metadata"]["creationTimestamp"]


# --- errors --------------------------------------------------------------------------------------


def test_status_not_found(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("nope", "payments")
    body = json.loads(err.value.body)
    assert err.value.status == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }


def test_already_exists_conflict_and_invalid(apps: client.AppsV1Api, scratch: str) -> None:
    apps.create_namespaced_deployment(scratch, _deployment("dup"))
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment(scratch, _deployment("dup"))
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "AlreadyExists"
    stale = apps.read_namespaced_deployment("dup", scratch)
    apps.patch_namespaced_deployment("dup", scratch, {"metadata": {"labels": {"touched": "yes"}}})
    stale.metadata.labels = {"app": "dup", "stale": "yes"}
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_deployment("dup", scratch, stale)
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "Conflict"
    bad = _deployment("bad")
    bad["spec"]["replicas"] = -1
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment(scratch, bad)
    body = json.loads(err.value.body)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "spec.replicas"
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment(
            "dup",
            scratch,
            {
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "web", "resources": {"limits": {"memory": "lots"}}}]}
                    }
                }
            },
        )
    assert err.value.status == 422
    assert (
        "spec.template.spec.containers[0].resources.limits[memory]" in json.loads(err.value.body)["message"]
    )


def test_method_not_allowed(core: client.CoreV1Api) -> None:
    status, body = _raw(
        core.api_client, "POST", "/apis/metrics.k8s.io/v1beta1/namespaces/payments/pods", body={}
    )
    assert status == 405 and body["reason"] == "MethodNotAllowed"


# --- writes --------------------------------------------------------------------------------------


def test_dry_run_persists_nothing(
    cluster: Any, apps: client.AppsV1Api, core: client.CoreV1Api, scratch: str
) -> None:
    before = len(cluster.requests())
    created = apps.create_namespaced_deployment(scratch, _deployment("ghost"), dry_run="All")
    assert created.metadata.name == "ghost" and created.spec.strategy.rolling_update.max_surge == "25%"
    patched = apps.patch_namespaced_deployment(
        tl.CRASHLOOP_DEPLOYMENT, tl.CRASHLOOP_NAMESPACE, {"spec": {"replicas": 9}}, dry_run="All"
    )
    assert patched.spec.replicas == 9
    pod = core.list_namespaced_pod("payments", label_selector="app=worker").items[0]
    core.delete_namespaced_pod(pod.metadata.name, "payments", dry_run="All")
    core.create_namespaced_pod_eviction(
        pod.metadata.name,
        "payments",
        {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod.metadata.name},
            "deleteOptions": {"dryRun": ["All"]},
        },
    )
    with pytest.raises(ApiException):
        apps.read_namespaced_deployment("ghost", scratch)
    assert apps.read_namespaced_deployment(tl.CRASHLOOP_DEPLOYMENT, tl.CRASHLOOP_NAMESPACE).spec.replicas == 3
    assert core.read_namespaced_pod(pod.metadata.name, "payments").metadata.uid == pod.metadata.uid
    writes = [r for r in cluster.requests()[before:] if r["method"] not in ("GET",)]
    assert len(writes) == 4 and all(r["dry_run"] for r in writes)
    assert {r["verb"] for r in writes} == {"create", "patch", "delete"}


def test_three_patch_types(apps: client.AppsV1Api, api: Any, scratch: str) -> None:
    apps.create_namespaced_deployment(scratch, _deployment("patchy"))
    _wait(lambda: apps.list_namespaced_replica_set(scratch, label_selector="app=patchy").items)
    # strategic merge (the client's default for dicts): containers merge by name, env by name
    apps.patch_namespaced_deployment(
        "patchy",
        scratch,
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}}
            }
        },
    )
    c = apps.read_namespaced_deployment("patchy", scratch).spec.template.spec.containers[0]
    assert c.image.endswith("nginx:1.27") and [e.name for e in c.env] == ["A", "B"]
    # JSON merge patch replaces lists
    status, _ = _raw(
        api,
        "PATCH",
        "/apis/apps/v1/namespaces/scratch/deployments/patchy",
        content_type="application/merge-patch+json",
        body={"metadata": {"annotations": {"owner": "sre"}}},
    )
    assert status == 200
    # JSON patch
    status, _ = _raw(
        api,
        "PATCH",
        "/apis/apps/v1/namespaces/scratch/deployments/patchy",
        content_type="application/json-patch+json",
        body=[
            {
                "op": "replace",
                "path": "/spec/template/spec/containers/0/image",
                "value": "public.ecr.aws/nginx/nginx:1.28",
            },
            {"op": "test", "path": "/metadata/annotations/owner", "value": "sre"},
        ],
    )
    assert status == 200
    status, body = _raw(
        api,
        "PATCH",
        "/apis/apps/v1/namespaces/scratch/deployments/patchy",
        content_type="application/json-patch+json",
        body=[{"op": "test", "path": "/metadata/annotations/owner", "value": "dev"}],
    )
    assert status == 422 and body["reason"] == "Invalid"
    d = apps.read_namespaced_deployment("patchy", scratch)
    assert d.metadata.annotations["owner"] == "sre"
    assert d.spec.template.spec.containers[0].image.endswith("nginx:1.28")
    assert d.metadata.generation == 3  # two template changes, the annotation did not bump it
    # the template change created a second revision and the rollout completes
    _wait(
        lambda: (
            lambda s: s.updated_replicas == 2 and s.available_replicas == 2 and not s.unavailable_replicas
        )(apps.read_namespaced_deployment("patchy", scratch).status)
    )
    rs = apps.list_namespaced_replica_set(scratch, label_selector="app=patchy").items
    replicas = sorted(r.spec.replicas for r in rs)
    assert len(rs) >= 2 and replicas[-1] == 2 and sum(replicas) == 2  # old revisions scaled to 0


def test_scale_subresource_and_delete(apps: client.AppsV1Api, core: client.CoreV1Api, scratch: str) -> None:
    apps.create_namespaced_deployment(scratch, _deployment("scaly", replicas=1))
    scale = apps.read_namespaced_deployment_scale("scaly", scratch)
    assert scale.spec.replicas == 1 and scale.status.selector == "app=scaly"
    apps.patch_namespaced_deployment_scale("scaly", scratch, {"spec": {"replicas": 3}})
    _wait(
        lambda: (
            len(
                [
                    p
                    for p in core.list_namespaced_pod(scratch, label_selector="app=scaly").items
                    if p.status.phase == "Running"
                ]
            )
            == 3
        )
    )
    pod = core.list_namespaced_pod(scratch, label_selector="app=scaly").items[0]
    core.delete_namespaced_pod(pod.metadata.name, scratch)
    _wait(
        lambda: (
            {
                p.metadata.uid for p in core.list_namespaced_pod(scratch, label_selector="app=scaly").items
            }.isdisjoint({pod.metadata.uid})
            and len(core.list_namespaced_pod(scratch, label_selector="app=scaly").items) == 3
        )
    )
    apps.delete_namespaced_deployment("scaly", scratch)
    _wait(lambda: not core.list_namespaced_pod(scratch, label_selector="app=scaly").items)


def test_pod_logs(core: client.CoreV1Api) -> None:
    pod = next(
        p
        for p in core.list_namespaced_pod("payments", label_selector="app=api").items
        if p.status.container_statuses[0].restart_count
    )
    previous = core.read_namespaced_pod_log(
        pod.metadata.name, "payments", previous=True, tail_lines=5, timestamps=True
    )
    lines = previous.splitlines()
    assert len(lines) == 5 and all(line[:4].isdigit() and line[19] == "." for line in lines)
    assert "limit_mib=256" in previous and "gc overhead" in lines[-1]
    full = core.read_namespaced_pod_log(pod.metadata.name, "payments", previous=True)
    assert "starting payments-api" in full and "timestamps" not in full
    assert (
        len(core.read_namespaced_pod_log(pod.metadata.name, "payments", previous=True, limit_bytes=40)) <= 40
    )
    healthy = next(
        p
        for p in core.list_namespaced_pod("payments", label_selector="app=api").items
        if p.status.container_statuses[0].ready
    )
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log(healthy.metadata.name, "payments", previous=True)
    assert err.value.status == 400
    assert 'previous terminated container "api"' in json.loads(err.value.body)["message"]
    assert core.read_namespaced_pod_log(healthy.metadata.name, "payments", since_seconds=60).count("\n") <= 5


def test_checkout_logs_show_errors_after_rollout(core: client.CoreV1Api) -> None:
    pod = core.list_namespaced_pod(tl.LATENCY_NAMESPACE, label_selector=f"app={tl.LATENCY_SERVICE}").items[0]
    assert pod.spec.containers[0].image.endswith(":v3.9.0")
    assert "ERROR" in core.read_namespaced_pod_log(pod.metadata.name, tl.LATENCY_NAMESPACE)


def test_eviction_respects_pdb(core: client.CoreV1Api, apps: client.AppsV1Api, scratch: str) -> None:
    apps.create_namespaced_deployment(scratch, _deployment("guarded", replicas=2))
    client.PolicyV1Api(core.api_client).create_namespaced_pod_disruption_budget(
        scratch,
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "guarded"},
            "spec": {"minAvailable": "100%", "selector": {"matchLabels": {"app": "guarded"}}},
        },
    )
    pods = _wait(
        lambda: (
            [
                p
                for p in core.list_namespaced_pod(scratch, label_selector="app=guarded").items
                if p.status.conditions
                and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)
            ]
            if len(core.list_namespaced_pod(scratch, label_selector="app=guarded").items) == 2
            else None
        )
    )
    _wait(lambda: len(pods) == 2 or None)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod_eviction(
            pods[0].metadata.name,
            scratch,
            {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pods[0].metadata.name}},
        )
    body = json.loads(err.value.body)
    assert err.value.status == 429 and body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"
    client.PolicyV1Api(core.api_client).patch_namespaced_pod_disruption_budget(
        "guarded", scratch, {"spec": {"minAvailable": 1}}
    )
    core.create_namespaced_pod_eviction(
        pods[0].metadata.name,
        scratch,
        {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pods[0].metadata.name}},
    )
    with pytest.raises(ApiException):
        core.read_namespaced_pod(pods[0].metadata.name, scratch)


def test_metrics(api: Any) -> None:
    custom = client.CustomObjectsApi(api)
    pods = custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "payments", "pods")["items"]
    assert pods and all(p["containers"][0]["usage"]["memory"].endswith("Ki") for p in pods)
    crashing = [p for p in pods if p["metadata"]["labels"].get("app") == "api"]
    memory = sorted(int(p["containers"][0]["usage"]["memory"][:-2]) // 1024 for p in crashing)
    assert memory[0] < 256 * 0.99  # near but under the bad limit
    nodes = custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")["items"]
    assert len(nodes) == 3 and all(n["usage"]["cpu"].endswith("n") for n in nodes)


def test_create_pod_and_cordon_scheduling(core: client.CoreV1Api, scratch: str) -> None:
    nodes = [n.metadata.name for n in core.list_node().items]
    for name in nodes[1:]:
        core.patch_node(name, {"spec": {"unschedulable": True}})
    try:
        core.create_namespaced_pod(
            scratch,
            {"metadata": {"name": "solo"}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}},
        )
        pod = _wait(
            lambda: (lambda p: p if p.status.phase == "Running" else None)(
                core.read_namespaced_pod("solo", scratch)
            )
        )
        assert pod.spec.node_name == nodes[0]
        assert pod.spec.restart_policy == "Always" and pod.status.qos_class == "BestEffort"
    finally:
        for name in nodes[1:]:
            core.patch_node(name, {"spec": {"unschedulable": None}})


def test_table_output(api: Any) -> None:
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    response = api.call_api(
        "GET",
        f"{api.configuration.host}/api/v1/namespaces/payments/pods?limit=2",
        header_params={"Accept": accept},
    )
    response.read()
    table = json.loads(response.data)
    assert table["kind"] == "Table" and table["metadata"]["continue"] and table["metadata"]["resourceVersion"]
    columns = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert columns[:5] == [("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0)]
    assert [n for n, p in columns if p == 1] == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    assert len(table["rows"]) == 2 and table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    response = api.call_api(
        "GET",
        f"{api.configuration.host}/apis/apps/v1/namespaces/payments/deployments/api?includeObject=Object",
        header_params={"Accept": accept},
    )
    response.read()
    row = json.loads(response.data)["rows"][0]
    assert row["cells"][0] == "api" and row["object"]["kind"] == "Deployment"


def test_watch_streams_changes(core: client.CoreV1Api, scratch: str) -> None:
    from kubernetes import watch

    rv = core.list_namespaced_pod(scratch).metadata.resource_version
    core.create_namespaced_pod(
        scratch,
        {"metadata": {"name": "watched"}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}},
    )
    seen: list[tuple[str, str]] = []
    for event in watch.Watch().stream(
        core.list_namespaced_pod, scratch, resource_version=rv, timeout_seconds=5
    ):
        obj = event["object"]
        seen.append((event["type"], obj.metadata.name))
        if obj.metadata.name == "watched" and obj.status.phase == "Running":
            break
    assert seen[0] == ("ADDED", "watched") and ("MODIFIED", "watched") in seen
