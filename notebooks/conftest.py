"""nbval runs the runbooks as committed (`pytest --nbval-lax notebooks/`), against the sandbox.

The kernels nbval starts inherit this process's environment, and nbval starts them while collecting,
before any fixture runs; so the sandbox comes up in `pytest_configure` (this conftest is an initial
one when pytest is pointed at notebooks/) and its environment goes into os.environ: exactly what
`eval "$(runbook sandbox status --env)"` does for a user.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_started: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    from runbook_kit.sandbox import manager

    state = Path(tempfile.mkdtemp(prefix="runbook-nbval-sandbox-"))
    info = manager.up("all", state_dir=state)
    _started.update(info=info, environ=dict(os.environ))
    os.environ.update(info.env)


def pytest_unconfigure(config: pytest.Config) -> None:
    from runbook_kit.sandbox import manager

    info = _started.pop("info", None)
    if info is not None:
        saved = _started.pop("environ")
        os.environ.clear()
        os.environ.update(saved)  # type: ignore[arg-type]
        manager.down(state_dir=info.state_dir)  # type: ignore[attr-defined]
