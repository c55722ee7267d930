"""nbval runs the runbooks as committed (`pytest --nbval-lax notebooks/`), against the sandbox.

The kernels nbval starts inherit this process's environment, so the sandbox's endpoints are put in
os.environ for the session: exactly what `eval "$(runbook sandbox status --env)"` does for a user.
"""

from __future__ import annotations

import os

import pytest

from runbook_kit.sandbox import manager


@pytest.fixture(scope="session", autouse=True)
def sandbox_environment(tmp_path_factory):
    info = manager.up("all", state_dir=tmp_path_factory.mktemp("sandbox"))
    saved = dict(os.environ)
    os.environ.update(info.env)
    try:
        yield info
    finally:
        os.environ.clear()
        os.environ.update(saved)
        manager.down(state_dir=info.state_dir)
