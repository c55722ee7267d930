"""Legacy discovery documents: /version, /api, /api/v1, /apis and /apis/<group>/<version>.

kubectl 1.32 first asks for aggregated discovery (apidiscovery.k8s.io/v2); answering with the legacy
documents and `Content-Type: application/json` makes it fall back to the legacy per-group requests,
which this module serves from the one resource table. That is all kubectl needs to resolve short
names, find the scale subresource and check eviction support before `drain`.
"""

from __future__ import annotations

from typing import Any

from runbook_sandbox.k8s.resources import GROUP_VERSIONS, RESOURCES

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.2-sandbox",
    "gitCommit": "67a30c0adcf52bd3f56ff0893ce19966be12991f",
    "gitTreeState": "clean",
    "buildDate": "2025-02-12T21:19:47Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUP_VERSIONS[name]]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_groups() -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(name) for name in GROUP_VERSIONS if name],
    }


def api_group(name: str) -> dict[str, Any] | None:
    if not name or name not in GROUP_VERSIONS:
        return None
    return dict(_group(name), kind="APIGroup", apiVersion="v1")


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    if version not in GROUP_VERSIONS.get(group, []):
        return None
    resources: list[dict[str, Any]] = []
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for sub, sub_group, sub_version, kind, verbs in r.subresources:
            item: dict[str, Any] = {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": list(verbs),
            }
            if (sub_group, sub_version) != (group, version):
                item.update(group=sub_group, version=sub_version)
            resources.append(item)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
