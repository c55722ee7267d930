"""pytest fixtures for tests that need the incident sandbox (load with `-p runbook_sandbox.testing`).

    sandbox          (session)  the whole sandbox, scenario "all", shared by tests that only read
    fresh_sandbox    (function) factory: fresh_sandbox("connections") -> SandboxInfo, torn down after
    use_sandbox      (function) the session sandbox's env exported (os.environ) and kit clients reset
    aws_pg_sandbox   (session)  the AWS and PostgreSQL parts (the session sandbox when Kubernetes is
                                available), for the sandbox's own tests
    comms_server     (function) the sandbox's Slack / Statuspage / PagerDuty stand-in on loopback

Every test that uses one of them is marked `sandbox`, so `pytest -m "not sandbox"` starts nothing.

`--with-sandbox` starts the whole sandbox before collection and exports its environment into
os.environ, exactly what `eval "$(runbook sandbox status --env)"` does for a user: nbval starts its
kernels while collecting, before any fixture runs, so `pytest --nbval-lax --with-sandbox notebooks/`
runs the runbooks as committed against it. Runbooks have no defaults naming a resource (their target
parameters are required), so for nbval the plugin does what `runbook run -p ...` does: it appends the
sandbox's names (`scenarios.RUNBOOK_PARAMETERS`) to each runbook's `parameters` cell, in the test
process only; the notebooks on disk and production never see them.

A sandbox is real processes and ports: whatever starts one ends it, by PID, in teardown. Its state
(the PostgreSQL data folder among it) lives in a folder of its own, not under pytest's numbered
temporary folders, which a second pytest session on the same machine may remove while this one runs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runbook_sandbox import manager, scenarios
from runbook_sandbox.manager import SandboxInfo

SANDBOX_FIXTURES = frozenset({"sandbox", "fresh_sandbox", "use_sandbox", "aws_pg_sandbox", "comms_server"})
_started: dict[str, Any] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--with-sandbox", action="store_true",
                     help="start the incident sandbox before collection and export its environment")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sandbox: needs the incident sandbox (started by fixtures)")
    if not config.getoption("--with-sandbox"):
        return
    info = manager.up("all", state_dir=_state_dir("nbval"))
    _started.update(info=info, environ=dict(os.environ))
    os.environ.update(info.env)


def pytest_unconfigure(config: pytest.Config) -> None:
    info = _started.pop("info", None)
    if info is not None:
        os.environ.clear()
        os.environ.update(_started.pop("environ"))
        manager.down(state_dir=info.state_dir)


def _inject_sandbox_parameters(item: pytest.Item) -> None:
    """An nbval cell item of a runbook's `parameters` cell gets the sandbox's target names appended."""
    cell = getattr(item, "cell", None)
    if cell is None or "parameters" not in (cell.get("metadata", {}).get("tags") or []):
        return
    values = scenarios.RUNBOOK_PARAMETERS.get(Path(str(item.path)).stem)
    if values:
        lines = "".join(f"{name} = {value!r}\n" for name, value in values.items())
        cell["source"] = f"{cell['source'].rstrip()}\n# injected by runbook_sandbox.testing\n{lines}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    with_sandbox = bool(config.getoption("--with-sandbox"))
    for item in items:
        if with_sandbox or SANDBOX_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sandbox)
        if with_sandbox:
            _inject_sandbox_parameters(item)


def _state_dir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"runbook-sandbox-{name}-"))  # manager.down removes it


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxInfo]:
    state_dir = _state_dir("session")
    info = manager.up("all", state_dir=state_dir)  # SandboxError names the part that failed
    try:
        yield info
    finally:
        manager.down(state_dir=state_dir)


@pytest.fixture(scope="session")
def aws_pg_sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxInfo]:
    if "k8s" in manager.available_parts():
        yield request.getfixturevalue("sandbox")
        return
    state_dir = _state_dir("aws-pg")
    info = manager.up("all", state_dir=state_dir, parts=("aws", "postgres"))
    try:
        yield info
    finally:
        manager.down(state_dir=state_dir)


@pytest.fixture
def fresh_sandbox() -> Iterator[Callable[..., SandboxInfo]]:
    started: list[Path] = []

    def start(scenario: str = "all", **kwargs: Any) -> SandboxInfo:
        state_dir = _state_dir(f"fresh-{scenario.replace(',', '-')}")
        started.append(state_dir)
        return manager.up(scenario, state_dir=state_dir, **kwargs)

    try:
        yield start
    finally:
        for state_dir in started:
            manager.down(state_dir=state_dir)


@pytest.fixture
def comms_server() -> Iterator[Any]:
    from runbook_sandbox.comms import CommsServer

    server = CommsServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


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
