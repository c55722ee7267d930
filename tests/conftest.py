"""Sandbox fixtures shared by every test tier.

    sandbox          (session)  the whole sandbox, scenario "all", shared by tests that only read
    fresh_sandbox    (function) factory: fresh_sandbox("connections") -> SandboxInfo, torn down after
    use_sandbox      (function) the session sandbox's env exported (os.environ) and kit clients reset
    aws_pg_sandbox   (session)  the AWS and PostgreSQL parts (the session sandbox when Kubernetes is
                                available), for the sandbox's own tests

A sandbox is real processes and ports: every fixture that starts one ends it, by PID, in teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runbook_kit.sandbox import manager
from runbook_kit.sandbox.manager import SandboxInfo


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    state_dir = tmp_path_factory.mktemp("sandbox")
    info = manager.up("all", state_dir=state_dir)  # SandboxError names the part that failed
    try:
        yield info
    finally:
        manager.down(state_dir=state_dir)


@pytest.fixture(scope="session")
def aws_pg_sandbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxInfo]:
    if "k8s" in manager.available_parts():
        yield request.getfixturevalue("sandbox")
        return
    state_dir = tmp_path_factory.mktemp("sandbox-aws-pg")
    info = manager.up("all", state_dir=state_dir, parts=("aws", "postgres"))
    try:
        yield info
    finally:
        manager.down(state_dir=state_dir)


@pytest.fixture
def fresh_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SandboxInfo]]:
    started: list[Path] = []

    def start(scenario: str = "all", **kwargs: Any) -> SandboxInfo:
        state_dir = tmp_path_factory.mktemp(f"fresh-{scenario.replace(',', '-')}")
        started.append(state_dir)
        return manager.up(scenario, state_dir=state_dir, **kwargs)

    try:
        yield start
    finally:
        for state_dir in started:
            manager.down(state_dir=state_dir)


@pytest.fixture
def use_sandbox(sandbox: SandboxInfo, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxInfo]:
    """Export the session sandbox's environment, as `runbook sandbox status` tells a user to."""
    from runbook_kit import clients

    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    clients.reset()
    try:
        yield sandbox
    finally:
        clients.reset()
