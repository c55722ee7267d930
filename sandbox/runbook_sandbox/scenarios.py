"""The registry of seeded incidents: what each one plants, where, and which runbook demonstrates it.

`runbook demo` and `runbook sandbox up --scenario` read this; the sandbox parts read the shared
names and times in `timeline`. The planted cause is written down so that a test (or a game-day
facilitator) can check that a runbook's finding names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from runbook_kit.errors import ParameterError
from runbook_sandbox import timeline as tl

__all__ = ["RUNBOOK_PARAMETERS", "SCENARIOS", "Scenario", "resolve", "runbook_parameters"]


def _minutes(delta: Any) -> int:
    return int(delta.total_seconds() // 60)


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    runbook: str | None
    parameters: Mapping[str, Any]
    cause: str
    parts: tuple[str, ...]  # the sandbox parts that seed something for it


SCENARIOS: Mapping[str, Scenario] = MappingProxyType(
    {
        "crashloop": Scenario(
            name="crashloop",
            description=f"{tl.CRASHLOOP_NAMESPACE}/{tl.CRASHLOOP_DEPLOYMENT} pods crash-loop after a rollout",
            runbook="pod_crashloop",
            parameters=MappingProxyType(
                {"namespace": tl.CRASHLOOP_NAMESPACE, "deployment": tl.CRASHLOOP_DEPLOYMENT}
            ),
            cause=(
                f"A rollout {_minutes(tl.CRASHLOOP_ROLLOUT_AGO)} minutes ago lowered the memory "
                f"limit from {tl.CRASHLOOP_GOOD_LIMIT} to {tl.CRASHLOOP_BAD_LIMIT}; the app needs "
                f"{tl.CRASHLOOP_APP_PEAK_MIB}Mi, so new pods are OOMKilled."
            ),
            parts=("k8s",),
        ),
        "connections": Scenario(
            name="connections",
            description=f"the {tl.DB_NAME} database ({tl.DB_INSTANCE_ID}) runs out of connections",
            runbook="db_connection_exhaustion",
            parameters=MappingProxyType({"db_instance_id": tl.DB_INSTANCE_ID}),
            cause=(
                f"{tl.LEAKING_APPLICATION} leaks sessions left idle in transaction for "
                f"{_minutes(tl.LEAK_AGE)} minutes, holding row locks that block orders-api, "
                f"and pushes the connection count towards max_connections={tl.DB_MAX_CONNECTIONS}."
            ),
            parts=("postgres", "aws"),
        ),
        "latency": Scenario(
            name="latency",
            description=f"{tl.LATENCY_NAMESPACE}/{tl.LATENCY_SERVICE} p99 latency spikes after a deploy",
            runbook="api_latency_spike",
            parameters=MappingProxyType({
                "load_balancer": tl.LATENCY_LOAD_BALANCER,
                "log_group": tl.LATENCY_LOG_GROUP,
                "codedeploy_application": tl.LATENCY_CODEDEPLOY_APP,
                "namespace": tl.LATENCY_NAMESPACE,
                "deployment": tl.LATENCY_SERVICE,
                "db_instance_id": tl.DB_INSTANCE_ID,
            }),
            cause=(
                f"A deployment of storefront-checkout {_minutes(tl.LATENCY_DEPLOY_AGO)} minutes "
                "ago shipped a payments client whose calls time out after 3 s; the database is healthy."
            ),
            parts=("aws", "k8s"),
        ),
        "node": Scenario(
            name="node",
            description=f"an EKS worker of {tl.NODE_ASG} fails its EC2 system status check",
            runbook="node_health",
            parameters=MappingProxyType({"node": ""}),  # discovered: the runbook finds the NotReady node
            cause=(
                f"The EC2 instance behind one worker of {tl.NODE_ASG} failed its system status check "
                f"{_minutes(tl.NODE_IMPAIRED_AGO)} minutes ago (degraded host, retirement scheduled): its "
                f"node is NotReady with {tl.NODE_NAMESPACE}/{tl.NODE_DEPLOYMENT} pods stranded on it."
            ),
            parts=("aws", "k8s"),
        ),
    }
)


# The sandbox's names for every shipped runbook's target parameters. Runbooks have no defaults that
# name a resource (a production default must never point at a sandbox name), so tests, nbval and the
# demo pass these explicitly.
RUNBOOK_PARAMETERS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    **{s.runbook: s.parameters for s in SCENARIOS.values() if s.runbook},
    "k8s_mitigation": MappingProxyType(
        {"namespace": tl.CRASHLOOP_NAMESPACE, "deployment": tl.CRASHLOOP_DEPLOYMENT}
    ),
    "db_mitigation": MappingProxyType({"db_instance_id": tl.DB_INSTANCE_ID}),
})


def runbook_parameters(runbook: str, **overrides: Any) -> dict[str, Any]:
    """The sandbox's target parameters for `runbook`, then `overrides` (a fresh dict)."""
    return {**RUNBOOK_PARAMETERS.get(runbook, {}), **overrides}


def resolve(scenario: str) -> list[str]:
    """`all`, one name, or a comma-separated list -> the scenario names, in registry order."""
    wanted = {s.strip() for s in scenario.split(",") if s.strip()}
    if "all" in wanted:
        return list(SCENARIOS)
    unknown = wanted - set(SCENARIOS)
    if unknown or not wanted:
        known = ", ".join(["all", *SCENARIOS])
        raise ParameterError(
            f"unknown scenario {scenario!r}; choose from {known} (comma-separated to combine)"
        )
    return [name for name in SCENARIOS if name in wanted]
