"""Facts about this machine, read once from the environment the process started with.

`RUNBOOK_READ_ONLY` is a property of the machine, set by whoever started the kernel or the runner.
It is read from the process's *initial* environment (`/proc/self/environ` on Linux, else
`os.environ` at import), so a cell that sets or deletes it later changes nothing. The guard refuses
real writes on a read-only machine, and the SDK clients built by `runbook_kit.clients` refuse them
too, so both walls read the same switch from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["FALSE_WORDS", "TRUE_WORDS", "initial_environ", "read_only", "read_only_reason"]

TRUE_WORDS = frozenset({"1", "true", "yes", "y", "on"})  # the same words as a bool runbook parameter
FALSE_WORDS = frozenset({"0", "false", "no", "n", "off", ""})


def _read_initial_environ() -> dict[str, str]:
    """The environment this process was started with (not what code set since)."""
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return dict(os.environ)
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep:
            env[name.decode(errors="replace")] = value.decode(errors="replace")
    return env


def _parse_read_only(raw: str | None) -> tuple[bool, str]:
    """(read-only?, why) for a RUNBOOK_READ_ONLY value; an unknown value fails closed."""
    if raw is None:
        return False, ""
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True, f"RUNBOOK_READ_ONLY={raw.strip()} is set on this machine: only dry runs are allowed"
    if word in FALSE_WORDS:
        return False, ""
    return True, (f"RUNBOOK_READ_ONLY={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off): "
                  "treated as read-only")


_INITIAL_ENV = _read_initial_environ()
_READ_ONLY, _READ_ONLY_WHY = _parse_read_only(_INITIAL_ENV.get("RUNBOOK_READ_ONLY"))


def initial_environ() -> Mapping[str, str]:
    """The environment at process start (a read-only view)."""
    return _INITIAL_ENV


def read_only() -> bool:
    """Whether this machine refuses every real write (read once, when the process started)."""
    return _READ_ONLY


def read_only_reason() -> str:
    """The one line a refusal gives ("" when writes are allowed)."""
    return _READ_ONLY_WHY
