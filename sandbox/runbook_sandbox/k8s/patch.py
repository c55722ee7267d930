"""The three patch types the API server accepts: JSON merge, strategic merge and JSON patch.

kubectl picks the type per command (cordon and `set resources` send strategic merge patches built
by diffing the object, `rollout undo` a JSON patch, `scale` a merge patch on /scale), and the python
client defaults to strategic merge for dicts. A strategic merge differs from a plain merge where
it matters for runbooks: lists of containers, env vars, ports and volumes merge element-wise by
their key (`name`, `containerPort`, `mountPath`), and the directives kubectl emits (`$patch`,
`$setElementOrder/<list>`, `$retainKeys`, `$deleteFromPrimitiveList/<list>`) are honoured.
"""

from __future__ import annotations

from typing import Any

from runbook_sandbox.k8s.status import ApiError, bad_request
from runbook_sandbox.k8s.store import clone

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# list field name -> merge key (the `patchMergeKey` of the Kubernetes API types we serve)
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "tolerations": None,  # atomic: replaced whole
    "taints": None,
}
PRIMITIVE_SETS = {"finalizers"}


def apply(doc: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    """The patched copy of `doc`; 400/415/422 as the API server answers them."""
    kind = content_type.split(";")[0].strip()
    if kind == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
        return merge_patch(clone(doc), patch)
    if kind == STRATEGIC:
        if not isinstance(patch, dict):
            raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
        return strategic_merge(clone(doc), patch)
    if kind == JSON_PATCH:
        if not isinstance(patch, list):
            raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        return json_patch(clone(doc), patch)
    if kind == APPLY_PATCH:
        raise ApiError(
            415, "server-side apply is not supported by the sandbox", reason="UnsupportedMediaType"
        )
    raise ApiError(
        415,
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC}",
        reason="UnsupportedMediaType",
    )


# --- RFC 7386 ----------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = merge_patch(target.get(key), value)
    return target


# --- strategic merge patch ----------------------------------------------------------------------


def strategic_merge(target: Any, patch: Any, *, field: str = "") -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    if not isinstance(target, dict):
        target = {}
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: clone(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            target[name] = [v for v in target.get(name) or [] if v not in value]
            continue
        if value is None:
            target.pop(key, None)
        elif isinstance(value, list):
            target[key] = _merge_list(target.get(key), value, field=key)
        elif isinstance(value, dict):
            merged = strategic_merge(target.get(key), value, field=key)
            if merged is None:
                target.pop(key, None)
            else:
                target[key] = merged
        else:
            target[key] = value
    for name, order in orders.items():
        if isinstance(target.get(name), list):
            target[name] = _apply_order(target[name], order, MERGE_KEYS.get(name))
    if isinstance(retain, list):
        for key in list(target):
            if key not in retain:
                del target[key]
    return target


def _merge_list(current: Any, patch: list[Any], *, field: str) -> list[Any]:
    current = list(current or [])
    if field in PRIMITIVE_SETS:
        return current + [v for v in patch if v not in current]
    merge_key = MERGE_KEYS.get(field)
    replace = any(isinstance(v, dict) and v.get("$patch") == "replace" for v in patch)
    if merge_key is None or replace or not all(isinstance(v, dict) for v in patch):
        return [clone(v) for v in patch if not (isinstance(v, dict) and v.get("$patch"))]
    for element in patch:
        key_value = element.get(merge_key)
        if key_value is None:
            raise bad_request(f"map: {element} does not contain declared merge key: {merge_key}")
        index = next(
            (
                i
                for i, have in enumerate(current)
                if isinstance(have, dict) and have.get(merge_key) == key_value
            ),
            None,
        )
        if element.get("$patch") == "delete":
            if index is not None:
                current.pop(index)
            continue
        if index is None:
            current.append(strategic_merge({}, element, field=field))
        else:
            current[index] = strategic_merge(current[index], element, field=field)
    return current


def _apply_order(items: list[Any], order: list[Any], merge_key: str | None) -> list[Any]:
    def key_of(item: Any) -> Any:
        return item.get(merge_key) if merge_key and isinstance(item, dict) else item

    wanted = [key_of(o) for o in order]
    ranked = [i for i in items if key_of(i) in wanted]
    ranked.sort(key=lambda i: wanted.index(key_of(i)))
    rest = [i for i in items if key_of(i) not in wanted]
    return ranked + rest


# --- RFC 6902 ----------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(
            f'the server rejected our request due to an error in our request: invalid JSON pointer "{path}"'
        )
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[_index(node, part, path, existing=True)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise ApiError(
                422,
                f"the server rejected our request due to an error in our request: "
                f'doc is missing path: "{path}"',
                reason="Invalid",
            )
    return node, parts[-1]


def _index(node: list[Any], part: str, path: str, *, existing: bool) -> int:
    if part == "-" and not existing:
        return len(node)
    try:
        i = int(part)
    except ValueError:
        raise bad_request(f"invalid array index {part!r} in {path}") from None
    if i < 0 or i > len(node) - (1 if existing else 0):
        raise ApiError(
            422,
            f"the server rejected our request due to an error in our request: "
            f"Unable to access invalid index: {i}",
            reason="Invalid",
        )
    return i


def _get(doc: Any, path: str) -> Any:
    if not _pointer(path):
        return doc
    parent, last = _parent(doc, _pointer(path), path)
    if isinstance(parent, list):
        return parent[_index(parent, last, path, existing=True)]
    if not isinstance(parent, dict) or last not in parent:
        raise ApiError(
            422,
            f"the server rejected our request due to an error in our request: doc is missing key: {path}",
            reason="Invalid",
        )
    return parent[last]


def _remove(doc: Any, path: str) -> Any:
    parent, last = _parent(doc, _pointer(path), path)
    value = _get(doc, path)
    if isinstance(parent, list):
        parent.pop(_index(parent, last, path, existing=True))
    else:
        del parent[last]
    return value


def _add(doc: Any, path: str, value: Any, *, replace: bool) -> Any:
    parts = _pointer(path)
    if not parts:
        return clone(value)
    if replace:
        _get(doc, path)  # must exist
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, list):
        i = _index(parent, last, path, existing=replace)
        if replace:
            parent[i] = clone(value)
        else:
            parent.insert(i, clone(value))
    elif isinstance(parent, dict):
        parent[last] = clone(value)
    else:
        raise ApiError(
            422,
            f"the server rejected our request due to an error in our request: doc is missing path: {path}",
            reason="Invalid",
        )
    return doc


def json_patch(doc: Any, operations: list[dict[str, Any]]) -> Any:
    for op in operations:
        name, path = op.get("op"), op.get("path")
        if not isinstance(path, str):
            raise bad_request(
                f"the server rejected our request due to an error in our request: "
                f"Unable to find path in operation: {op}"
            )
        if name == "add":
            doc = _add(doc, path, op.get("value"), replace=False)
        elif name == "replace":
            doc = _add(doc, path, op.get("value"), replace=True)
        elif name == "remove":
            _remove(doc, path)
        elif name in ("move", "copy"):
            source = op.get("from", "")
            value = _remove(doc, source) if name == "move" else clone(_get(doc, source))
            doc = _add(doc, path, value, replace=False)
        elif name == "test":
            if _get(doc, path) != op.get("value"):
                raise ApiError(
                    422,
                    f"the server rejected our request due to an error in our request: "
                    f"testing value {path} failed: test failed",
                    reason="Invalid",
                )
        else:
            raise bad_request(
                f"the server rejected our request due to an error in our request: Unexpected kind: {name}"
            )
    return doc
