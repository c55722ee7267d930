"""The REST semantics: route a request to a resource and verb, and answer like the API server.

Transport-free (server.py owns HTTP): a `Request` in, a `Response` out, so the rules are readable in
one place: paths (`/api/v1/namespaces/{ns}/pods/{name}/log`, `/apis/apps/v1/deployments` for
all namespaces), verbs (get, list, watch, create, update, patch, delete, deletecollection),
`dryRun=All` on every write (validated and answered, never stored), selectors, pagination and
Table output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_sandbox.k8s import (
    access,
    dependents,
    discovery,
    localpods,
    metrics,
    podlogs,
    rbac,
    subresources,
    tables,
    validate,
    watch,
)
from runbook_sandbox.k8s.controller import Controller
from runbook_sandbox.k8s.pods import bind, delete_pod
from runbook_sandbox.k8s.resources import Resource, lookup
from runbook_sandbox.k8s.selectors import field_predicate, label_predicate
from runbook_sandbox.k8s.status import ApiError, bad_request, status_body
from runbook_sandbox.k8s.store import Store, clone, now
from runbook_sandbox.k8s.workloads import safe_encode

JSON = "application/json"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    accept: str = JSON
    content_type: str = JSON
    body: bytes = b""
    user: str = access.USER  # who made it: a Job pod's ServiceAccount (localpods.identity) or the admin


@dataclass
class Response:
    status: int
    body: Any = None  # dict/list (JSON), str (text/plain) or None
    content_type: str = JSON
    verb: str = ""
    dry_run: bool = False
    stream: Iterator[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Route:
    resource: Resource
    namespace: str | None
    name: str | None
    sub: str | None


class Api:
    def __init__(
        self, store: Store, controller: Controller, *, server_address: str, state_dir: Path | None = None
    ) -> None:
        self.store = store
        self.controller = controller
        self.server_address = server_address
        self.state_dir = state_dir  # where access.json (denied verbs, see access.py) may be written

    def handle(self, req: Request) -> Response:
        try:
            return self._dispatch(req)
        except ApiError as err:
            return Response(err.code, err.body())

    # --- routing ----------------------------------------------------------------------------

    def _dispatch(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        if req.method == "GET":
            doc = self._discovery(parts)
            if doc is not None:
                return Response(200, doc, verb="get")
        if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        route = self._route(group, version, rest)
        if req.user != access.USER:  # a ServiceAccount's token (a Job pod's process): RBAC decides
            rbac.authorize(
                self.store,
                username=req.user,
                method=req.method,
                query=req.query,
                group=group,
                plural=route.resource.plural,
                sub=route.sub,
                namespace=route.namespace,
                name=route.name,
            )
        dry_run = self._dry_run(req)
        if route.resource.group == "metrics.k8s.io":
            return self._metrics(req, route)
        if route.resource.group in ("authorization.k8s.io", "authentication.k8s.io"):
            return self._review(req, route)
        return self._verb(req, route, dry_run)

    def _discovery(self, parts: list[str]) -> dict[str, Any] | None:
        if parts == ["version"]:
            return discovery.VERSION
        if parts == ["api"]:
            return discovery.api_versions(self.server_address)
        if parts == ["apis"]:
            return discovery.api_groups()
        if parts == ["api", "v1"]:
            return discovery.resource_list("", "v1")
        if len(parts) == 2 and parts[0] == "apis":
            return discovery.api_group(parts[1])
        if len(parts) == 3 and parts[0] == "apis":
            return discovery.resource_list(parts[1], parts[2])
        return None

    @staticmethod
    def _route(group: str, version: str, rest: list[str]) -> Route:
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "the server could not find the requested resource")
        resource = lookup(group, version, rest[0])
        if resource is None:
            raise ApiError(404, "the server could not find the requested resource")
        if namespace is not None and not resource.namespaced:
            raise ApiError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub and sub not in {s[0] for s in resource.subresources}:
            raise ApiError(404, "the server could not find the requested resource")
        if name and resource.namespaced and namespace is None:
            raise ApiError(404, "the server could not find the requested resource")
        return Route(resource, namespace, name, sub)

    @staticmethod
    def _dry_run(req: Request) -> bool:
        value = req.query.get("dryRun")
        if value is None or value == "":
            return False
        if value != "All":
            raise bad_request(f'Invalid dry run value: "{value}"; the only valid value is "All"')
        return True

    @staticmethod
    def _body(req: Request) -> Any:
        if "protobuf" in req.content_type or "cbor" in req.content_type:
            raise ApiError(
                415,
                f"the body of the request was in an unknown format - accepted media types include: "
                f"application/json, application/merge-patch+json, application/strategic-merge-patch+json, "
                f'application/json-patch+json (the sandbox does not speak "{req.content_type}")',
                reason="UnsupportedMediaType",
            )
        try:
            return json.loads(req.body or b"null")
        except ValueError as exc:
            raise bad_request(f"the object provided is unrecognized: {exc}") from None

    # --- verbs ------------------------------------------------------------------------------

    def _verb(self, req: Request, route: Route, dry_run: bool) -> Response:
        r, method = route.resource, req.method
        if route.sub == "log" and method == "GET":
            pod = self.store.require("pods", route.namespace or "", route.name or "")
            if localpods.is_local(pod) and self.controller.runtime is not None:
                text, stream = podlogs.read(self.controller.runtime, pod, req.query)
                return Response(200, text, content_type="text/plain", verb="get", stream=stream)
            text = subresources.pod_log(
                self.store, namespace=route.namespace or "", name=route.name or "", query=req.query, at=now()
            )
            return Response(200, text, content_type="text/plain", verb="get")
        if route.sub == "eviction" and method == "POST":
            body = self._body(req) or {}
            dry = dry_run or subresources.eviction_dry_run(body)
            doc = subresources.eviction(
                self.store,
                self.controller,
                namespace=route.namespace or "",
                name=route.name or "",
                body=body,
                dry_run=dry,
                at=now(),
            )
            return Response(201, doc, verb="create", dry_run=dry)
        if route.sub == "scale":
            if method == "GET":
                obj = self.store.require(r.plural, route.namespace or "", route.name or "")
                return Response(200, subresources.scale_of(obj), verb="get")
            if method in ("PUT", "PATCH"):
                doc = subresources.scale_write(
                    self.store,
                    plural=r.plural,
                    namespace=route.namespace or "",
                    name=route.name or "",
                    method=method,
                    body=self._body(req),
                    content_type=req.content_type,
                    dry_run=dry_run,
                )
                return Response(200, doc, verb="patch" if method == "PATCH" else "update", dry_run=dry_run)
        if route.sub == "status" and method == "GET":
            return Response(
                200, self.store.require(r.plural, route.namespace or "", route.name or ""), verb="get"
            )
        if route.sub:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        if route.name is None:
            if method == "GET":
                if req.query.get("watch") in ("true", "1"):
                    return self._watch(req, route)
                return self._list(req, route)
            if method == "POST":
                return self._create(req, route, dry_run)
            if method == "DELETE":
                return self._delete_collection(req, route, dry_run)
        else:
            if method == "GET":
                obj = self.store.require(r.plural, route.namespace or "", route.name)
                if tables.wants_table(req.accept):
                    meta = {"resourceVersion": obj["metadata"]["resourceVersion"]}
                    return Response(
                        200,
                        tables.table(
                            r.plural,
                            [obj],
                            at=now(),
                            list_meta=meta,
                            include_object=req.query.get("includeObject", ""),
                        ),
                        verb="get",
                    )
                return Response(200, obj, verb="get")
            if method in ("PUT", "PATCH"):
                return self._write(req, route, dry_run)
            if method == "DELETE":
                return self._delete(route, dry_run, self._propagation(req))
        raise ApiError(405, "the server does not allow this method on the requested resource")

    def _predicates(self, req: Request, plural: str) -> Any:
        labels = label_predicate(req.query.get("labelSelector"))
        fields = field_predicate(req.query.get("fieldSelector"), plural=plural)
        if labels and fields:
            return lambda obj: labels(obj) and fields(obj)
        return labels or fields

    def _list(self, req: Request, route: Route) -> Response:
        r = route.resource
        try:
            limit = int(req.query.get("limit") or 0)
        except ValueError:
            raise bad_request(f"invalid limit: {req.query.get('limit')}") from None
        items, rv, token, remaining = self.store.page(
            r.plural,
            namespace=route.namespace if r.namespaced else None,
            predicate=self._predicates(req, r.plural),
            limit=limit,
            token=req.query.get("continue"),
        )
        meta: dict[str, Any] = {"resourceVersion": rv}
        if token:
            meta["continue"] = token
        if remaining:
            meta["remainingItemCount"] = remaining
        if tables.wants_table(req.accept):
            doc = tables.table(
                r.plural, items, at=now(), list_meta=meta, include_object=req.query.get("includeObject", "")
            )
            return Response(200, doc, verb="list")
        head = json.dumps({"kind": f"{r.kind}List", "apiVersion": r.api_version, "metadata": meta})
        body = head[:-1].encode() + b',"items":[' + b",".join(self.store.encoded(o) for o in items) + b"]}"
        return Response(200, body, verb="list")

    def _watch(self, req: Request, route: Route) -> Response:
        r = route.resource
        events = watch.stream(
            self.store,
            plural=r.plural,
            namespace=route.namespace if r.namespaced else None,
            predicate=self._predicates(req, r.plural),
            since=int(req.query.get("resourceVersion") or 0),
            timeout=float(req.query.get("timeoutSeconds") or 60),
        )
        return Response(200, None, verb="watch", stream=events)

    def _namespace_exists(self, route: Route) -> None:
        if route.resource.namespaced and self.store.get("namespaces", "", route.namespace or "") is None:
            raise ApiError(
                404,
                f'namespaces "{route.namespace}" not found',
                details={"name": route.namespace, "kind": "namespaces"},
            )

    def _create(self, req: Request, route: Route, dry_run: bool) -> Response:
        r = route.resource
        body = self._body(req)
        if not isinstance(body, dict):
            raise bad_request("the object provided is unrecognized (must be of type object)")
        meta = body.setdefault("metadata", {})
        if r.namespaced:
            if meta.get("namespace") and meta["namespace"] != route.namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = route.namespace
            self._namespace_exists(route)
        if not meta.get("name") and meta.get("generateName"):
            import os

            meta["name"] = meta["generateName"] + safe_encode(os.urandom(8), 5)
        for managed in ("resourceVersion", "uid", "creationTimestamp"):
            meta.pop(managed, None)
        obj = validate.prepare(r.plural, body)
        with self.store.lock:
            if r.plural == "pods" and obj["spec"].get("nodeName"):
                node = self.store.get("nodes", "", obj["spec"]["nodeName"])
                if node is not None:
                    self.store.stamp(obj)
                    obj = bind(obj, node, at=now())
            created = self.store.create(r.plural, obj, dry_run=dry_run)
        if r.plural in ("jobs", "pods") and not dry_run:
            self.controller.poke()
        return Response(201, created, verb="create", dry_run=dry_run)

    def _write(self, req: Request, route: Route, dry_run: bool) -> Response:
        r = route.resource
        body = self._body(req)
        with self.store.lock:
            current = self.store.require(r.plural, route.namespace or "", route.name or "")
            if req.method == "PATCH":
                from runbook_sandbox.k8s import patch

                wanted = patch.apply(current, body, req.content_type)
                expect = (wanted.get("metadata") or {}).get("resourceVersion")
                if expect == current["metadata"]["resourceVersion"]:
                    expect = None
            else:
                if not isinstance(body, dict):
                    raise bad_request("the object provided is unrecognized (must be of type object)")
                wanted = clone(body)
                expect = (wanted.get("metadata") or {}).get("resourceVersion")
                if (wanted.get("metadata") or {}).get("name") != route.name:
                    raise bad_request("the name of the object does not match the name on the URL")
            wanted.setdefault("metadata", {})["name"] = route.name
            if r.namespaced:
                wanted["metadata"]["namespace"] = route.namespace
            obj = validate.prepare(r.plural, wanted, current=current)
            stored = self.store.replace(r.plural, obj, expect_rv=expect, dry_run=dry_run)
            if r.plural == "pods" and not dry_run:
                self.controller.settled.discard(stored["metadata"]["uid"])
        return Response(200, stored, verb="patch" if req.method == "PATCH" else "update", dry_run=dry_run)

    def _propagation(self, req: Request) -> str:
        return dependents.propagation(req.query, self._body(req) if req.body else None)

    def _delete(self, route: Route, dry_run: bool, propagation: str = "") -> Response:
        r = route.resource
        with self.store.lock:
            obj = self.store.require(r.plural, route.namespace or "", route.name or "")
            if r.plural == "pods":
                deleted = delete_pod(self.store, obj, at=now(), dry_run=dry_run)
                self.controller.poke()
                return Response(200, deleted, verb="delete", dry_run=dry_run)
            if r.plural == "jobs" and not dry_run:
                # batch/v1's default is Orphan (kubectl sends Background); Foreground ends the pods first
                dependents.delete_job_pods(self.store, obj, policy=propagation or "Orphan", at=now())
                self.controller.poke()
            self.store.delete(r.plural, route.namespace or "", route.name or "", dry_run=dry_run)
        if r.plural == "namespaces":
            terminating = dict(obj, status={"phase": "Terminating"})
            return Response(200, terminating, verb="delete", dry_run=dry_run)
        details = {"name": route.name, "group": r.group, "kind": r.plural, "uid": obj["metadata"]["uid"]}
        return Response(
            200, status_body(code=200, success=True, details=details), verb="delete", dry_run=dry_run
        )

    def _delete_collection(self, req: Request, route: Route, dry_run: bool) -> Response:
        r = route.resource
        predicate = self._predicates(req, r.plural)
        with self.store.lock:
            doomed = [
                o
                for o in self.store.items(r.plural, route.namespace if r.namespaced else None)
                if predicate is None or predicate(o)
            ]
            for obj in doomed:
                if r.plural == "pods":
                    delete_pod(self.store, obj, at=now(), dry_run=dry_run)
                else:
                    self.store.delete(
                        r.plural,
                        obj["metadata"].get("namespace", ""),
                        obj["metadata"]["name"],
                        dry_run=dry_run,
                    )
        return Response(
            200,
            {"kind": f"{r.kind}List", "apiVersion": r.api_version, "metadata": {}, "items": doomed},
            verb="deletecollection",
            dry_run=dry_run,
        )

    # --- SelfSubjectAccessReview, SelfSubjectReview ------------------------------------------

    def _review(self, req: Request, route: Route) -> Response:
        if req.method != "POST" or route.name is not None:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        body = self._body(req)
        if route.resource.plural == "selfsubjectreviews":
            return Response(201, access.self_review(body, user=req.user), verb="create")
        doc = access.access_review(body, state_dir=self.state_dir)
        attrs = doc["spec"].get("resourceAttributes")
        if req.user != access.USER and isinstance(attrs, dict):
            doc["status"] = rbac.review(self.store, username=req.user, attrs=attrs)
        return Response(201, doc, verb="create")

    # --- metrics.k8s.io ---------------------------------------------------------------------

    @property
    def _usage(self) -> metrics.Usage | None:
        runtime = self.controller.runtime
        return runtime.usage if runtime is not None else None

    def _metrics(self, req: Request, route: Route) -> Response:
        if req.method != "GET":
            raise ApiError(405, "the server does not allow this method on the requested resource")
        at = now()
        r = route.resource
        if r.plural == "nodes":
            items = metrics.node_metrics(self.store, at, self._usage)
        else:
            pods = self.store.items("pods", route.namespace)
            items = [m for m in (metrics.pod_metrics(p, at, self._usage) for p in pods) if m is not None]
        predicate = label_predicate(req.query.get("labelSelector"))
        if predicate:
            items = [i for i in items if predicate(i)]
        if route.name is not None:
            match = next((i for i in items if i["metadata"]["name"] == route.name), None)
            if match is None:
                raise ApiError(
                    404,
                    f'{r.plural}.metrics.k8s.io "{route.name}" not found',
                    details={"name": route.name, "group": "metrics.k8s.io", "kind": r.plural},
                )
            return Response(200, match, verb="get")
        return Response(
            200,
            {"kind": f"{r.kind}List", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items},
            verb="list",
        )
