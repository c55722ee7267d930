"""Warm kernels: a small pool of standby runner processes, each used for exactly one run.

A standby (`python -m runbook_kit.standby`) has imported the runner, started its kernel with a generic
environment (headless, nothing about any run) and imported the heavy libraries in it, then waits for
one job on its stdin; it then runs exactly `runbook run` and exits. Its replacement is started when
that run ends (`refill`), not when it begins: warming a kernel costs ~2–3 s of CPU, and on a small
machine it would slow the very run it replaces; the other standbys of the pool serve the alerts that
arrive meanwhile.

It keeps what a cold child gives: a process per run (a run that eats the memory or hangs never takes
the receiver down), SIGTERM when the receiver dies (`PR_SET_PDEATHSIG`), a lower CPU priority, and the
same output and exit codes. A standby that dies, before or after it is ready, is logged and replaced
(after a pause that grows while they keep dying, so a broken installation does not spin); it is never
fatal. When no standby is ready, `take` returns None at once and the run goes cold: never a wait.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Pool"]

log = logging.getLogger("runbook.serve")
_MAX_PAUSE = 30.0  # seconds between replacements while standbys keep dying


class Pool:
    def __init__(
        self,
        *,
        size: int,
        env: dict[str, str],
        preexec_fn: Callable[[], None] | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.size, self.env, self.preexec_fn = size, env, preexec_fn
        self.command = command or [sys.executable, "-m", "runbook_kit.standby"]
        self.ready: collections.deque[asyncio.subprocess.Process] = collections.deque()
        self.started = 0  # standbys started so far (for tests and the log)
        self.died = 0  # standbys that died before a run was given to them
        self._watchers: dict[int, asyncio.Task[None]] = {}  # pid → task watching a ready standby
        self._tasks: set[asyncio.Task[None]] = set()
        self._procs: dict[int, asyncio.subprocess.Process] = {}  # every standby not yet taken
        self._failures = 0  # consecutive deaths: the pause before the next start grows
        self._live = 0  # standbys starting or ready (not yet taken, not dead)
        self._closing = False

    def start(self) -> None:
        self.refill()

    def refill(self) -> None:
        """Start standbys until `size` are starting or ready (after a run, or a death)."""
        while not self._closing and self._live < self.size:
            self._spawn()

    def take(self) -> asyncio.subprocess.Process | None:
        """A ready standby, now the caller's (give it its job on stdin), or None when none is ready."""
        while self.ready:
            proc = self.ready.popleft()
            watcher = self._watchers.pop(proc.pid, None)
            if watcher is not None:
                watcher.cancel()
            self._procs.pop(proc.pid, None)
            self._live -= 1
            if proc.returncode is None:
                return proc
        return None

    async def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM to every standby not given a run (each shuts its kernel down), then wait."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        procs = list(self._procs.values())
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), timeout=grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self.ready.clear()

    def _spawn(self) -> None:
        self._live += 1
        task = asyncio.create_task(self._standby())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _standby(self) -> None:
        if self._failures:
            await asyncio.sleep(min(_MAX_PAUSE, 0.5 * 2 ** (self._failures - 1)))
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                preexec_fn=self.preexec_fn,
            )
        except OSError as exc:
            self._died(None, f"could not start: {exc}")
            return
        self.started += 1
        self._procs[proc.pid] = proc
        assert proc.stdout is not None
        try:
            line = await proc.stdout.readline()
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken pipe: the standby is as good as dead
            line = b""
        if not line.startswith(b"ready"):
            await self._reap(proc, "died before it was ready")
            return
        self._failures = 0
        self.ready.append(proc)
        self._watchers[proc.pid] = asyncio.current_task()  # type: ignore[assignment]
        log.info(
            "warm standby ready",
            extra={"fields": {"pid": proc.pid, "seconds": round(time.monotonic() - started, 3)}},
        )
        await proc.wait()  # cancelled when the standby is taken for a run
        self._watchers.pop(proc.pid, None)
        with contextlib.suppress(ValueError):
            self.ready.remove(proc)
        await self._reap(proc, "died while it waited for a run")

    async def _reap(self, proc: asyncio.subprocess.Process, what: str) -> None:
        self._procs.pop(proc.pid, None)
        if self._closing:
            return
        err = b""
        with contextlib.suppress(Exception):
            assert proc.stderr is not None
            err = await asyncio.wait_for(proc.stderr.read(), timeout=5)
        code = await proc.wait()
        lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
        self._died(proc.pid, f"{what} (exit code {code}){': ' + lines[-1][:300] if lines else ''}")

    def _died(self, pid: int | None, why: str) -> None:
        self.died += 1
        self._failures += 1
        self._live -= 1
        log.warning("warm standby died; starting another", extra={"fields": {"pid": pid, "why": why}})
        self.refill()

    def status(self) -> dict[str, Any]:
        return {"size": self.size, "ready": len(self.ready), "started": self.started, "died": self.died}
