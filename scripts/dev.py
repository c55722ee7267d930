#!/usr/bin/env python3
"""The project's one task runner. Needs only Python >= 3.11; everything else goes into ./.venv.

    python3 scripts/dev.py demo [SCENARIO]   # sandbox up, seed, run the runbook, print the record path
    python3 scripts/dev.py test [PYTEST ARGS] # the whole test suite (unit, runner, sandbox, runbooks, nbval)
    python3 scripts/dev.py bench             # the benchmarks in benchmarks/
    python3 scripts/dev.py lint              # ruff, import-linter contracts, mypy

The venv holds the kit and its sandbox (sandbox/), both editable; it is (re)built when either
pyproject.toml changes (a hash is kept in .venv/.stamp).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("RUNBOOK_VENV", ROOT / ".venv"))
BIN = VENV / "bin"


def _stamp() -> str:
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", ROOT / "sandbox" / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    stamp = VENV / ".stamp"
    if stamp.exists() and stamp.read_text() == _stamp() and (BIN / "runbook").exists():
        return
    if sys.version_info < (3, 11):  # noqa: UP036 - this script must say so on an old Python
        sys.exit(f"runbook_kit needs Python >= 3.11; this is {sys.version.split()[0]}")
    print(f"setting up {VENV} (first run only: a few minutes)...", file=sys.stderr, flush=True)
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    # the kit and, beside it, its incident sandbox (a distribution of its own that depends on the kit)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]", "-e", str(ROOT / "sandbox")], check=True)
    stamp.write_text(_stamp())


# Debian packages the tests use as real parts: the file each must provide. Senders for tests/serve
# (Alertmanager, Prometheus) and the browser for tests/browser (JupyterLab in headless Chromium).
DEBIAN_PACKAGES = {
    "prometheus-alertmanager": "/usr/bin/prometheus-alertmanager",
    "prometheus": "/usr/bin/prometheus",
    "chromium": "/usr/lib/chromium/chromium",
    "chromium-driver": "/usr/bin/chromedriver",
}


def ensure_debian_packages() -> None:
    """Install the missing ones with apt-get (as root), saying so; otherwise say what is missing.

    Never a download of a browser or a binary of its own: Debian's packages only. The tests that
    need a package fail with one line when it is absent; they never skip silently.
    """
    missing = [pkg for pkg, binary in DEBIAN_PACKAGES.items() if not Path(binary).exists()]
    if not missing:
        return
    names = " ".join(missing)
    if os.geteuid() != 0 or not Path("/usr/bin/apt-get").exists():
        print(f"missing Debian package(s): {names}; install them (apt-get install -y {names}) "
              "or the tests that use them fail", file=sys.stderr, flush=True)
        return
    print(f"installing Debian package(s) the tests need: {names} (apt-get)...", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
    if subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                      env=env, stdout=subprocess.DEVNULL).returncode != 0:
        print(f"`apt-get install {names}` failed; the tests that use them will fail", file=sys.stderr)


def run(*cmd: str) -> int:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    task, *rest = argv or ["help"]
    if task in {"help", "-h", "--help"}:
        print(__doc__)
        return 0
    ensure_venv()
    py = str(BIN / "python")
    if task == "demo":
        return run(str(BIN / "runbook"), "demo", *rest)
    if task == "test":
        ensure_debian_packages()
        steps = [
            [str(BIN / "lint-imports")],
            [py, "-m", "pytest", *rest],
        ]
        if not rest:  # the runbooks as committed, executed against a sandbox started for them
            steps.append([py, "-m", "pytest", "--nbval-lax", "--with-sandbox", "notebooks/"])
        for step in steps:
            code = run(*step)
            if code != 0:
                return code
        return 0
    if task == "bench":
        return run(py, "benchmarks/run.py", *rest)
    if task == "lint":
        codes = [
            run(
                str(BIN / "ruff"),
                "check",
                "runbook_kit",
                "tests",
                "scripts",
                "benchmarks",
                "sandbox",
            ),
            run(str(BIN / "lint-imports")),
            run(str(BIN / "mypy")),
        ]
        return max(codes)
    if task == "shell":
        return run(str(BIN / "jupyter"), "lab", "notebooks/", *rest)
    print(f"unknown task {task!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
