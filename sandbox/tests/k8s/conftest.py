"""Fixtures: the sandbox's Kubernetes server as a real subprocess on a free loopback port.

`cluster` (session) serves the crashloop and latency scenarios for tests that read, or that write
only in namespaces they create; `fresh_cluster` (per test) is for commands that change the seeded
state (rollout undo, drain). Every process started here is ended here, by PID, and the fixture checks
that its port is closed afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from k8s_harness import Sandbox, port_open, start, stop


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sandbox = start(tmp_path_factory.mktemp("k8s-session"), "--scenario", "all")
    yield sandbox
    assert stop(sandbox) == 0
    assert not port_open(sandbox.port)


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = start(tmp_path / "state", "--scenario", "crashloop", "--tick", "0.2")
    yield sandbox
    assert stop(sandbox) == 0
    assert not port_open(sandbox.port)
