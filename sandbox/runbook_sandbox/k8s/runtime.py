"""The container runtime of the sandbox's kubelet for Job pods: each container is a real local process.

The image is never pulled; it stands for "the kit's image", whose code is this machine's. A container
runs `command` + `args` (an argument list, never through a shell), `command[0]` resolved first in the
directory of the sandbox's Python (the venv's bin, so `runbook` is the kit's CLI and `python` its
interpreter), then on PATH. A container without `command` runs the entrypoint mapped to its image
(`--image-entrypoint IMAGE=PROGRAM`, repeatable; an image matches with or without its tag); without
either it cannot start (terminated, reason StartError, like a runtime with no entrypoint).

Each process starts in its own session (so a `runbook run` and the kernels it starts end together),
with stdout and stderr captured line by line into `DIR/pods/<uid>/<container>.log` in the CRI log
format (`<RFC3339Nano> <stream> F <line>`), which the logs endpoint serves, following while it runs.
Ending a container (pod deleted, evicted, deadline passed) is SIGTERM to its process group and
SIGKILL after the pod's terminationGracePeriodSeconds; when its process has ended, whatever it left
running is killed, as a container's end kills its PID namespace (found by RUNBOOK_SANDBOX_CONTAINER in
their environment: a Jupyter kernel has a session of its own). Every process is listed with its start
time in `DIR/pod-processes.json`, which `runbook sandbox down` reads to end whatever is still running even
if this server was killed first; `stop_all` ends them when the server stops.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from runbook_sandbox.k8s.store import iso, now
from runbook_sandbox.processes import CONTAINER_MARKER, sweep

PIDS_FILE = "pod-processes.json"


@dataclass
class Container:
    """One container's process: running while `exit_code` is None."""

    uid: str
    name: str
    log: Path
    started: dt.datetime
    process: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None
    finished: dt.datetime | None = None
    reason: str = ""  # Completed / Error / StartError (set when it ends)
    message: str = ""
    signalled: bool = False  # SIGTERM sent (deleted, evicted, past the deadline)
    done: threading.Event = field(default_factory=threading.Event)


def resolve(program: str, *, path: str) -> str | None:
    """`program` as the kubelet's stand-in finds it: a path as is, else the venv's bin, then PATH."""
    if os.sep in program:
        return program if os.access(program, os.X_OK) else None
    found = shutil.which(program, path=os.path.dirname(sys.executable))
    return found or shutil.which(program, path=path)


def _cri_line(stream: str, text: bytes, at: dt.datetime) -> bytes:
    stamp = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    return f"{stamp} {stream} F ".encode() + text.rstrip(b"\n") + b"\n"


class Runtime:
    """The containers of every pod this kubelet runs, keyed by (pod uid, container name)."""

    def __init__(self, state_dir: Path, *, on_change: object = None) -> None:
        self.state_dir = state_dir
        self._lock = threading.Lock()
        self._pids_lock = threading.Lock()
        self._containers: dict[tuple[str, str], Container] = {}
        self._on_change = on_change  # called (no arguments) when a process ends

    # --- queries ----------------------------------------------------------------------------

    def get(self, uid: str, name: str) -> Container | None:
        with self._lock:
            return self._containers.get((uid, name))

    def uids(self) -> set[str]:
        with self._lock:
            return {uid for uid, _ in self._containers}

    def usage(self, uid: str, name: str) -> tuple[float, float] | None:
        """(millicores averaged since start, MiB resident) of a running container's processes."""
        import psutil

        box = self.get(uid, name)
        if box is None or box.process is None or box.done.is_set():
            return None
        try:
            root = psutil.Process(box.process.pid)
            procs = [root, *root.children(recursive=True)]
            cpu = sum(sum(p.cpu_times()[:2]) for p in procs)
            rss = sum(p.memory_info().rss for p in procs)
            elapsed = max(0.001, time.time() - root.create_time())
        except psutil.Error:
            return None
        return cpu / elapsed * 1000, rss / 2**20

    def log_path(self, uid: str, name: str) -> Path:
        return self.state_dir / "pods" / uid / f"{name}.log"

    # --- start / end --------------------------------------------------------------------------

    def start(
        self, *, uid: str, name: str, argv: list[str], env: dict[str, str], cwd: str | None = None
    ) -> Container:
        """Start a container's process (or record why it could not start); never raises."""
        log = self.log_path(uid, name)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
        box = Container(uid=uid, name=name, log=log, started=now())
        with self._lock:
            self._containers[(uid, name)] = box
        program = resolve(argv[0], path=env.get("PATH", "")) if argv else None
        if program is None:
            what = (
                f'exec: "{argv[0]}": executable file not found in $PATH' if argv else "no command specified"
            )
            self._finish(box, 128, "StartError", f"failed to create containerd task: {what}")
            return box
        try:
            box.process = subprocess.Popen(
                [program, *argv[1:]],
                env={**env, CONTAINER_MARKER: self._marker(box)},
                cwd=cwd or env.get("HOME") or "/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            self._finish(box, 128, "StartError", f"failed to create containerd task: {exc}")
            return box
        self._write_pids()
        threading.Thread(target=self._wait, args=(box,), name=f"pod-{uid[:8]}-{name}", daemon=True).start()
        return box

    def _wait(self, box: Container) -> None:
        """Copy stdout and stderr into the log as lines arrive (one reader: their order is kept)."""
        proc = box.process
        assert proc is not None and proc.stdout is not None and proc.stderr is not None
        streams = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
        partial = {fd: b"" for fd in streams}
        with box.log.open("ab", buffering=0) as out, selectors.DefaultSelector() as sel:
            for fd in streams:  # stdout first: when both are ready, what was printed first is written first
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                ready = [key.fd for key, _ in sel.select(timeout=1.0)]
                if not ready and proc.poll() is not None:
                    break  # a grandchild holds the pipes open after the container's process ended
                for fd in sorted(ready, key=lambda f: streams[f] != "stdout"):
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        sel.unregister(fd)
                        chunk = b"\n" if partial[fd] else b""
                    *lines, partial[fd] = (partial[fd] + chunk).split(b"\n")
                    at = now()
                    out.write(b"".join(_cri_line(streams[fd], line, at) for line in lines))
        proc.stdout.close()
        proc.stderr.close()
        code = proc.wait()
        sweep(self._marker(box))  # the container ends: what its process left running goes with it
        exit_code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, like a runtime
        self._finish(box, exit_code, "Completed" if exit_code == 0 else "Error", "")

    def _finish(self, box: Container, code: int, reason: str, message: str) -> None:
        box.exit_code, box.reason, box.message, box.finished = code, reason, message, now()
        box.done.set()
        self._write_pids()
        callback = self._on_change
        if callable(callback):
            callback()

    def terminate(self, uid: str, *, grace: float) -> None:
        """SIGTERM each container of the pod, SIGKILL after `grace` seconds (returns at once)."""
        with self._lock:
            boxes = [b for (u, _), b in self._containers.items() if u == uid]
        for box in boxes:
            if box.process is None or box.done.is_set() or box.signalled:
                continue
            box.signalled = True
            self._signal(box, signal.SIGTERM)
            timer = threading.Timer(grace, self._kill_if_running, args=(box,))
            timer.daemon = True
            timer.start()

    def _marker(self, box: Container) -> str:
        return f"{self.state_dir}/pods/{box.uid}/{box.name}"

    def _kill_if_running(self, box: Container) -> None:
        if not box.done.is_set():
            self._signal(box, signal.SIGKILL)

    @staticmethod
    def _signal(box: Container, sig: int) -> None:
        if box.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(box.process.pid, sig)

    def forget(self, uid: str) -> None:
        """Drop a deleted pod's finished containers and their logs."""
        with self._lock:
            gone = [k for k, b in self._containers.items() if k[0] == uid and b.done.is_set()]
            for key in gone:
                del self._containers[key]
        if gone:
            shutil.rmtree(self.state_dir / "pods" / uid, ignore_errors=True)

    def stop_all(self, *, timeout: float = 3.0) -> None:
        """End every running container: SIGTERM, then SIGKILL for those still running after `timeout`."""
        with self._lock:
            boxes = [b for b in self._containers.values() if b.process is not None and not b.done.is_set()]
        for box in boxes:
            self._signal(box, signal.SIGTERM)
        for box in boxes:
            if not box.done.wait(timeout / max(1, len(boxes))):
                self._signal(box, signal.SIGKILL)
                box.done.wait(2)
        sweep(f"{self.state_dir}/pods/")

    def _write_pids(self) -> None:
        import psutil

        with self._lock:
            running = {
                f"{b.uid}/{b.name}": b.process.pid
                for b in self._containers.values()
                if b.process is not None and not b.done.is_set()
            }
        entries = {}
        for key, pid in running.items():
            with contextlib.suppress(psutil.Error):
                entries[key] = {"pid": pid, "started": psutil.Process(pid).create_time()}
        path = self.state_dir / PIDS_FILE
        with self._pids_lock:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
            tmp.replace(path)


def stamp(moment: dt.datetime | None) -> str | None:
    return iso(moment) if moment else None
