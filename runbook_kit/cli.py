"""The `runbook` command: list, show and run runbooks; start the incident sandbox; run the demo.

Every error a user can cause (unknown runbook, bad parameter, unreachable backend) ends as one
readable line on stderr and a non-zero exit; a run that started always leaves its record.
Exit codes: 0 succeeded, 1 the run failed, 2 bad input, 130 aborted (SIGINT/SIGTERM).
Heavy imports (nbclient, nbconvert, the sandbox) happen inside the commands that need them.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from runbook_kit.errors import RunbookError

__all__ = ["cli", "main"]


def _lean_imports() -> None:
    """Called by the commands that execute notebooks, in this process only (never on library import).

    jsonschema (imported by nbformat) compiles an RFC 3987 grammar at import when `rfc3987_syntax` is
    installed (jupyterlab brings it): ~1.1 s on every `runbook run`. nbformat's schema has no IRI
    formats, so the runner does not need that checker; keeping the module out halves start-up.
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"runbook: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="runbook_kit")
def cli() -> None:
    """Executable incident-response runbooks. The executed notebook is the incident record.

    \b
        runbook list
        runbook show pod_crashloop
        runbook run pod_crashloop -p namespace payments -p deployment api --incident INC-1234
        runbook demo
    """


@cli.command("list")
def list_() -> None:
    """List the runbooks with their one-line purpose.

    \b
        runbook list
    """
    from runbook_kit import catalog

    books = catalog.runbooks()
    width = max((len(b.name) for b in books), default=0)
    for book in books:
        click.echo(f"{book.name:<{width}}  {book.purpose or book.title}")


@cli.command()
@click.argument("name")
def show(name: str) -> None:
    """Show a runbook's purpose and parameters (type, default, help).

    \b
        runbook show db_connection_exhaustion
    """
    from runbook_kit import catalog, params

    try:
        book = catalog.find(name)
        declared = params.declared(catalog.load(book.path))
    except RunbookError as exc:
        _fail(str(exc))
    click.echo(f"{book.name}: {book.title}")
    if book.purpose:
        click.echo(f"  {book.purpose}")
    click.echo(f"  {book.path}\n\nParameters:")
    for p in declared.values():
        click.echo(f"  {p.name:<20} {p.type:<6} default {p.default:<16} {p.help}")
    if not declared:
        click.echo("  (none)")


def _param_file(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as exc:
        _fail(f"cannot read parameter file {path}: {exc}")
    if not isinstance(data, dict):
        _fail(f"parameter file {path} must hold a mapping of name: value")
    return data


@cli.command(context_settings={"show_default": True})
@click.argument("name")
@click.option("-p", "--param", "pairs", nargs=2, multiple=True, metavar="KEY VALUE",
              help="A parameter; the value is coerced to the type the notebook declares.")
@click.option("-f", "--param-file", type=click.Path(dir_okay=False), help="YAML file of parameters.")
@click.option("--incident", help="Incident id (folder of the record). Default: adhoc-<UTC date>.")
@click.option("--store", help="A folder or s3://bucket/prefix (default $RUNBOOK_STORE, ./incidents).")
@click.option("--timeout", type=float, default=1800.0, help="Whole-run timeout in seconds.")
@click.option("--cell-timeout", type=float, default=600.0, help="Per-cell timeout in seconds.")
def run(name: str, pairs: tuple[tuple[str, str], ...], param_file: str | None, incident: str | None,
        store: str | None, timeout: float, cell_timeout: float) -> None:
    """Run a runbook headless; the executed notebook is always written.

    \b
        runbook run pod_crashloop -p namespace payments -p deployment api --incident INC-1234
        runbook run db_connection_exhaustion -f params.yaml -p dry_run false
    """
    _lean_imports()
    from runbook_kit.runner import run_notebook

    values = _param_file(param_file)
    values.update(dict(pairs))
    try:
        result = run_notebook(name, parameters=values, incident=incident, store=store,
                              timeout=timeout, cell_timeout=cell_timeout)
    except RunbookError as exc:
        _fail(str(exc))
    _report(result)
    sys.exit(result.exit_code)


def _report(result: Any) -> None:
    for entry in result.entries:
        if entry.kind in ("finding", "action"):
            click.echo(f"  {entry.one_line()}", err=True)
    if result.failure:
        click.echo(f"runbook: {result.status}: {result.failure}", err=True)
    else:
        click.echo(f"runbook: {result.status}", err=True)
    click.echo(result.notebook_path)


@cli.group()
def sandbox() -> None:
    """The incident sandbox: AWS (moto), PostgreSQL and Kubernetes on 127.0.0.1, with seeded incidents.

    \b
        runbook sandbox up --scenario crashloop
        eval "$(runbook sandbox status --env)"
        runbook sandbox down
    """


@sandbox.command()
@click.option("--scenario", default="all", show_default=True,
              help="crashloop, connections, latency, or all.")
def up(scenario: str) -> None:
    """Start the sandbox and seed a scenario; prints the environment to export.

    \b
        runbook sandbox up --scenario connections
    """
    from runbook_kit.sandbox import manager

    try:
        info = manager.up(scenario)
    except RunbookError as exc:
        _fail(str(exc), 1)
    click.echo(f"sandbox up ({info.scenario}) in {info.state_dir}", err=True)
    _print_env(info.env)


def _print_env(env: dict[str, str]) -> None:
    for key, value in sorted(env.items()):
        click.echo(f"export {key}={json.dumps(value)}")


@sandbox.command()
@click.option("--env", "env_only", is_flag=True, help="Print only the export lines.")
def status(env_only: bool) -> None:
    """Show the sandbox's endpoints and the environment to export to use it.

    \b
        eval "$(runbook sandbox status --env)"   # then: jupyter lab, kubectl get pods -A
    """
    from runbook_kit.sandbox import manager

    info = manager.status()
    if info is None:
        _fail("the sandbox is not running (start it with `runbook sandbox up`)", 1)
    if not env_only:
        click.echo(f"# scenario {info.scenario}, state in {info.state_dir}")
        click.echo(f"# AWS        {info.aws_endpoint}")
        click.echo(f"# Kubernetes {info.k8s_url}  (kubeconfig {info.kubeconfig})")
        click.echo(f"# PostgreSQL {info.pg_dsn}")
    _print_env(info.env)


@sandbox.command()
def down() -> None:
    """Stop every sandbox process and remove its state.

    \b
        runbook sandbox down
    """
    from runbook_kit.sandbox import manager

    manager.down()
    click.echo("sandbox down", err=True)


@cli.command()
@click.argument("scenario", default="crashloop")
@click.option("--store", help="Record store. Default: $RUNBOOK_STORE or ./incidents.")
def demo(scenario: str, store: str | None) -> None:
    """Sandbox up, seed SCENARIO, run its runbook headless, print the record path, sandbox down.

    \b
        runbook demo              # the crashloop scenario
        runbook demo connections
    """
    import tempfile
    from pathlib import Path

    _lean_imports()
    from runbook_kit.runner import run_notebook
    from runbook_kit.sandbox import manager
    from runbook_kit.sandbox.scenarios import SCENARIOS

    chosen = SCENARIOS.get(scenario)
    if chosen is None or not chosen.runbook:
        demoable = [n for n, s in SCENARIOS.items() if s.runbook]
        _fail(f"no demo for scenario {scenario!r}; choose one of: {', '.join(demoable)}")
    with tempfile.TemporaryDirectory(prefix="runbook-demo-") as state:
        click.echo(f"starting the sandbox with scenario {scenario!r}: {chosen.description}", err=True)
        try:
            info = manager.up(scenario, state_dir=Path(state))
        except RunbookError as exc:
            _fail(str(exc), 1)
        try:
            click.echo(f"running {chosen.runbook} ...", err=True)
            result = run_notebook(chosen.runbook, parameters=chosen.parameters, incident=f"demo-{scenario}",
                                  store=store, env=info.env)
        finally:
            manager.down(state_dir=Path(state))
    click.echo(f"planted cause: {chosen.cause}", err=True)
    _report(result)
    sys.exit(result.exit_code)


def main() -> None:
    cli(prog_name="runbook")


if __name__ == "__main__":
    main()
