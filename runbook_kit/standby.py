"""A warm standby of `runbook serve`: a runner process whose kernel is started and warmed, waiting
for exactly one run (`python -m runbook_kit.standby`; the pool is runbook_kit.serve.warm).

Before any run it does only what every run does first, with nothing run-specific: it imports the
runner (nbclient, nbformat, nbconvert), starts a kernel with its own, generic environment (headless:
`RUNBOOK_HEADLESS=1`, no incident, no runbook) and imports the heavy libraries in it (WARM_IMPORTS:
imports only, nothing that reads a target, no name left in the kernel's namespace). Then, over its
pipes:

    stdout  `ready` (one line) once warm
    stdin   one JSON line: {"runbook", "param_file", "incident", "store", "timeout", "cell_timeout"}

and it runs exactly `runbook run` (runbook_kit.cli.run_command) on that kernel: same validation, same
record, same output and exit codes; the run's values reach the kernel only through the injected
parameters cell. Then it exits: a kernel serves one run, never two.

While it waits: end of input (the pool closed it) or SIGTERM/SIGINT → its kernel is shut down, exit
0; the kernel dying → one `runbook:` line on stderr, exit 75 (the pool logs it and starts another).
A job line it cannot read → one line, exit 2, nothing ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from typing import Any

from runbook_kit import cli
from runbook_kit.runner import StartedKernel, kernel_environment, start_kernel

__all__ = ["EXIT_KERNEL_DIED", "WARM_IMPORTS", "main"]

EXIT_KERNEL_DIED = 75  # EX_TEMPFAIL: the kernel died before a run; nothing ran
# What a runbook's kernel spends its first seconds on (~3.8 s of a cold run): modules, and the names
# of a lazy package that load more modules when first touched (the kubernetes client's API classes).
WARM_IMPORTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("runbook_kit", ()),
    ("runbook_kit.record", ()),
    ("runbook_kit.k8s", ()),
    ("runbook_kit.aws", ()),
    ("runbook_kit.pg", ()),
    ("runbook_kit.clients", ()),
    ("pandas", ()),
    ("matplotlib.figure", ()),  # the kit draws Figures directly, never through pyplot
    ("matplotlib.backends.backend_agg", ()),
    ("kubernetes.client", ("ApiClient", "Configuration", "CoreV1Api", "AppsV1Api", "PolicyV1Api",
                           "CustomObjectsApi")),
    ("kubernetes.config", ()),
    ("boto3", ()),
)
# Run in the kernel silently (no history, no output), leaving no name in its namespace. A module
# that is not installed is skipped: the run imports (or misses) it as a cold run would. Then one
# figure with a title is drawn to PNG in memory (as the kit's plots are: a Figure, no pyplot, so
# nothing is left open), so the first plot of a run does not pay for loading fonts.
_WARM_CODE = """\
def _runbook_warm(spec):
    import importlib, io
    for name, attributes in spec:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attribute in attributes:
            getattr(module, attribute, None)
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return
    figure = Figure(layout="constrained")
    figure.add_subplot().set_title("warm")
    figure.savefig(io.BytesIO(), format="png")
_runbook_warm({modules!r})
del _runbook_warm
"""


async def _warm(km: Any, modules: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    """Import `modules` in the kernel (raises RuntimeError naming what failed)."""
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        errors: list[str] = []

        def on_output(msg: dict[str, Any]) -> None:
            if msg.get("msg_type") == "error":
                errors.append(f"{msg['content'].get('ename')}: {msg['content'].get('evalue')}")

        code = _WARM_CODE.format(modules=[(m, list(n)) for m, n in modules])
        reply = await kc.execute_interactive(code, silent=True, store_history=False, timeout=120,
                                             output_hook=on_output)
        if reply["content"].get("status") != "ok":
            content = reply["content"]
            raise RuntimeError(errors[0] if errors else f"{content.get('ename')}: {content.get('evalue')}")
    finally:
        kc.stop_channels()


def _runner_imports() -> None:
    """What `runbook run` imports before its first cell, imported now; the HTML exporter's templates
    compiled (its first export costs ~0.5 s, later ones ~0.05 s)."""
    import nbclient  # noqa: F401
    import nbformat  # noqa: F401

    from runbook_kit import recorder

    with contextlib.suppress(Exception):  # the run's export reports its own failure
        recorder.warm_exporter()


async def _wait_for_job(km: Any) -> bytes | None:
    """The job line; None when the input ends, a signal asks to stop, or the kernel dies (then raises)."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    def settle(line: bytes) -> None:
        if not got.done():
            got.set_result(line)

    def read() -> None:  # a daemon thread: a blocked read never holds the exit
        line = sys.stdin.buffer.readline()
        loop.call_soon_threadsafe(settle, line)

    threading.Thread(target=read, daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, settle, b"")
    try:
        while True:
            done, _ = await asyncio.wait({got}, timeout=1.0)
            if done:
                return got.result() or None
            if not await km.is_alive():
                raise RuntimeError("the standby's kernel died while it waited for a run")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _job(line: bytes) -> dict[str, Any]:
    job = json.loads(line)
    if not isinstance(job, dict) or not isinstance(job.get("runbook"), str):
        raise ValueError("a job is a JSON object with at least `runbook`")
    return job


def main() -> None:
    cli.lean_imports()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    folder = tempfile.mkdtemp(prefix="runbook-standby-")
    env = kernel_environment(os.environ)
    km: Any = None
    started = time.monotonic()
    try:
        try:
            km = loop.run_until_complete(start_kernel(env=env, kernel_name="python3", folder=folder))
            loop.run_until_complete(_warm(km, WARM_IMPORTS))
            _runner_imports()
        except Exception as exc:
            print(f"runbook: the standby could not warm its kernel: {type(exc).__name__}: {exc}"[:400],
                  file=sys.stderr)
            sys.exit(EXIT_KERNEL_DIED)
        print(f"ready {time.monotonic() - started:.3f}", flush=True)
        try:
            line = loop.run_until_complete(_wait_for_job(km))
        except RuntimeError as exc:
            print(f"runbook: {exc}", file=sys.stderr)
            sys.exit(EXIT_KERNEL_DIED)
        if line is None:
            return
        try:
            job = _job(line)
        except ValueError as exc:
            cli.fail(f"the standby could not read its job: {exc}")
        kernel = StartedKernel(manager=km, loop=loop, env=env)
        km = None  # the run owns it now and shuts it down
        try:
            cli.run_command(
                name=job["runbook"], param_file=job.get("param_file"), incident=job.get("incident"),
                store=job.get("store"), timeout=str(job.get("timeout", 1800)),
                cell_timeout=str(job.get("cell_timeout", 600)), kernel=kernel,
            )
        except SystemExit as done:  # `runbook run` always ends here, its record written and closed
            shutil.rmtree(folder, ignore_errors=True)
            sys.stdout.flush()
            sys.stderr.flush()
            # skip the interpreter's teardown of everything the run imported (0.1-0.3 s of the
            # alert's wait): nothing is left to write; the kernel is already shut down
            os._exit(0 if done.code is None else done.code if isinstance(done.code, int) else 1)
    finally:
        if km is not None:
            with contextlib.suppress(Exception):
                loop.run_until_complete(km.shutdown_kernel(now=True))
            with contextlib.suppress(Exception):
                loop.run_until_complete(km.cleanup_resources())
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
