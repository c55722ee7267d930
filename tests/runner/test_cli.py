"""The `runbook` command as a user meets it: one line per error, exit codes, help with examples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from runbook_kit import catalog
from runbook_kit.cli import cli

PARAMS = (
    "code",
    "namespace = 'payments'  # where to look\nreplicas = 3  # how many\ndry_run = True  # plan only\n",
    ["parameters"],
)


def runbook(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runbook_kit.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def _commands(group: click.Group, prefix: str = ""):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # built-in and plugin commands (the sandbox's)
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")


@pytest.mark.parametrize(("name", "command"), list(_commands(cli)))
def test_every_command_is_documented_with_an_example(name, command):
    assert command.help and f"runbook {name.split()[0]}" in command.help, f"`runbook {name}` has no example"


def test_list_shows_every_shipped_runbook_with_its_purpose():
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0
    for book in catalog.runbooks():
        line = next(ln for ln in result.output.splitlines() if ln.startswith(book.name + " "))
        assert book.purpose and book.purpose in line


def test_show_lists_parameters_with_types_defaults_and_help(write_notebook):
    nb = write_notebook("scaler", ("markdown", "# Scale\nScale a deployment."), PARAMS)
    result = CliRunner().invoke(cli, ["show", nb])
    assert result.exit_code == 0, result.output
    assert "Scale a deployment." in result.output
    assert any(
        ln.split()[:4] == ["replicas", "int", "default", "3"] and "how many" in ln
        for ln in result.output.splitlines()
    )


def test_unknown_runbook_is_one_line_and_exit_2():
    result = runbook("run", "pod_crashlop")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no runbook named 'pod_crashlop'" in result.stderr


def test_bad_parameter_is_one_line_and_exit_2(write_notebook, tmp_path):
    nb = write_notebook("p", PARAMS)
    for args, message in (
        (["-p", "replicas", "many"], "expects int"),
        (["-p", "x = 1\nimport os", "1"], "unknown parameter"),
        (["--incident", "../../etc"], "incident id"),
    ):
        result = runbook("run", nb, *args, "--store", str(tmp_path / "s"))
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_run_prints_the_record_path_and_param_file_values(write_notebook, tmp_path):
    nb = write_notebook(
        "p", PARAMS, ("code", "import runbook_kit as rk\nrk.finding(f'{namespace} x{replicas}')")
    )
    pfile = tmp_path / "params.yaml"
    pfile.write_text("namespace: orders\nreplicas: 5\n")
    result = runbook(
        "run",
        nb,
        "-f",
        str(pfile),
        "-p",
        "replicas",
        "7",
        "--incident",
        "INC-9",
        "--store",
        str(tmp_path / "s"),
    )
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.is_file() and path.parent == tmp_path / "s" / "INC-9"
    meta = json.loads(path.read_text())["metadata"]["runbook_kit"]
    assert meta["parameters"] == {"namespace": "orders", "replicas": 7}
    assert "[finding:info] orders x7" in result.stderr


def test_failed_run_exits_1_and_still_prints_the_record(write_notebook, tmp_path):
    nb = write_notebook("p", PARAMS, ("code", "1/0"))
    result = runbook("run", nb, "--store", str(tmp_path / "s"))
    assert result.returncode == 1 and "ZeroDivisionError" in result.stderr
    assert Path(result.stdout.strip()).is_file()


def test_every_refused_input_is_one_line_exit_2_and_nothing_written(write_notebook, tmp_path):
    nb = write_notebook(
        "p", ("code", "replicas = 3  # n\nratio = 0.5  # r\nitems = []  # l\n", ["parameters"]),
        ("code", f"open({str(tmp_path / 'ran')!r}, 'w')"),
    )
    files = {
        "bomb.yaml": b'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
                     b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nitems: *d\n",
        "latin1.yaml": b"replicas: 3\n# caf\xe9\n",
        "dates.yaml": b"items: [2024-01-01]\n",
        "nan.yaml": b"ratio: .nan\n",
        "inf.yaml": b"items: [1, .inf]\n",
        "big.yaml": b"replicas: " + b"9" * 5000 + b"\n",
        "binary.yaml": b"items: [!!binary aGVsbG8=]\n",
        "set.yaml": b"items: [!!set {a, b}]\n",
        "deep.yaml": b"items: " + b"[" * 3000 + b"]" * 3000 + b"\n",
        "surrogate.yaml": b'items: ["\\ud800"]\n',
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    cases = [
        (["-p", "replicas", "9" * 5000], "more than 1000 digits"),
        (["-p", "ratio", "1e999"], "expects float"),
        (["-p", "ratio", "nan"], "expects float"),
        (["-p", "items", "[" * 3000 + "]" * 3000], "give JSON"),
        (["-p", "items", "[NaN]"], "give JSON"),
        (["-p", "ratio", "0.5", "-f", str(tmp_path / "surrogate.yaml")], "not valid Unicode"),
        (["-p", "items", '["caf\udce9"]'], "not valid Unicode"),  # a Latin-1 byte in argv
        (["--timeout", "nan"], "--timeout must be a positive number"),
        (["--timeout", "-5"], "--timeout must be a positive number"),
        (["--cell-timeout", "inf"], "--cell-timeout must be a positive number"),
        (["--timeout", "soon"], "--timeout must be a positive number"),
        *[(["-f", str(tmp_path / name)], message) for name, message in [
            ("bomb.yaml", "aliases"), ("latin1.yaml", "not UTF-8"), ("dates.yaml", "holds a date"),
            ("nan.yaml", "NaN and infinity"), ("inf.yaml", "NaN or infinity"), ("big.yaml", "parameter file"),
            ("binary.yaml", "holds a bytes"), ("set.yaml", "holds a set"), ("deep.yaml", "parameter file"),
        ]],
    ]
    for args, message in cases:
        result = runbook("run", nb, *args, "--store", str(tmp_path / "s"))
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, (args, result.stderr)
    assert not (tmp_path / "s").exists() and not (tmp_path / "ran").exists()


def test_run_help_documents_every_exit_code():
    result = CliRunner().invoke(cli, ["run", "--help"])
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "128+N"):
        assert f"\n    {code}" in result.output, code
