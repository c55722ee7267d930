"""Child processes of the sandbox: started in their own session, ended by process group.

Every sandbox part (the AWS and Kubernetes servers, PostgreSQL and its client processes) is started
with `spawn` and ended with `stop_pid`, so `runbook sandbox down` can end exactly what `up` started
(signal first, SIGKILL after a timeout), wherever it runs from.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["CONTAINER_MARKER", "spawn", "stop_pid", "sweep"]

CONTAINER_MARKER = "RUNBOOK_SANDBOX_CONTAINER"  # in the environment of a Job pod's processes


def spawn(args: list[str], log: Path) -> subprocess.Popen[str]:
    """Start `args` in a new session: stdout piped (for its ready line), stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as err:
        return subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )


def stop_pid(pid: int, *, sig: int = signal.SIGTERM, timeout: float = 5) -> None:
    """End a process group we started (its leader is `pid`): `sig`, then SIGKILL after `timeout`."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie of another parent is as good as gone
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def sweep(prefix: str) -> list[int]:
    """SIGKILL every process whose CONTAINER_MARKER starts with `prefix` (what a container's end does to
    the processes left in it: a Jupyter kernel runs in a session of its own, so a process group does not
    reach it). Waits for them to end (3 s at most); returns the PIDs killed."""
    import psutil

    killed = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if proc.pid != os.getpid() and proc.environ().get(CONTAINER_MARKER, "").startswith(prefix):
                proc.kill()
                killed.append(proc)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and any(_running(proc) for proc in killed):
        time.sleep(0.02)
    return [proc.pid for proc in killed]


def _running(proc: Any) -> bool:
    import psutil

    try:  # a zombie whose parent is gone may wait long for its reaper: it runs no more
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
