"""runbook_kit: executable incident-response runbooks. Notebooks use one name: `import runbook_kit as rk`.

Backends (`rk.k8s`, `rk.pg`, `rk.aws`) and `rk.investigate` load on first use, so `import runbook_kit`
stays cheap: it never imports boto3, kubernetes, pandas or matplotlib.

This facade is what a runbook author uses: the steps of each backend, `rk.apply` (the only verb that
changes a system) and the record helpers. Raw SDK clients (`runbook_kit.clients`) and settings are not
part of it: a client handed to a notebook would bypass the guard. Code that really needs one imports
it explicitly (`from runbook_kit import clients`), and a test flags any runbook that does.
"""

import importlib
import sys

from runbook_kit.errors import (
    BackendError,
    Forbidden,
    NotFound,
    ParameterError,
    RunbookError,
    Throttled,
    Unavailable,
    UnsafeActionRefused,
)
from runbook_kit.guard import Plan, Result, apply
from runbook_kit.record import action, event, finding, summary

__version__ = "0.1.0"

_LAZY = ("aws", "k8s", "pg", "investigate", "verification", "triage")

__all__ = [
    "BackendError",
    "Forbidden",
    "NotFound",
    "ParameterError",
    "Plan",
    "Result",
    "RunbookError",
    "Throttled",
    "Unavailable",
    "UnsafeActionRefused",
    "action",
    "apply",
    "aws",
    "event",
    "finding",
    "investigate",
    "k8s",
    "pg",
    "summary",
    "triage",
    "verification",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        module = importlib.import_module(f"runbook_kit.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'runbook_kit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


if "IPython" in sys.modules:  # in a kernel: RunbookErrors print as one line, not a traceback wall
    from runbook_kit import _ipython

    _ipython.install()
