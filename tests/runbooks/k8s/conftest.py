"""Fixtures for the Kubernetes runbooks: a sandbox of their own with the crashloop scenario."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from runbook_sandbox.manager import SandboxInfo


@pytest.fixture
def fresh_k8s(fresh_sandbox: Callable[..., SandboxInfo]) -> SandboxInfo:
    """A Kubernetes sandbox of its own (crashloop scenario) for tests that change it."""
    return fresh_sandbox("crashloop", parts=("k8s",))
