"""`runbook sandbox up|status|down` and `runbook demo`, added to the kit's CLI by an entry point.

They live here, not in the kit, because they only make sense where the sandbox is installed: a
production install of runbook_kit shows neither.
"""

from __future__ import annotations

import json
import sys

import click

from runbook_kit.cli import fail, lean_imports, report
from runbook_kit.errors import RunbookError

__all__ = ["demo", "sandbox"]


@click.group()
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
    from runbook_sandbox import manager

    try:
        info = manager.up(scenario)
    except RunbookError as exc:
        fail(str(exc), 1)
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
    from runbook_sandbox import manager

    info = manager.status()
    if info is None:
        fail("the sandbox is not running (start it with `runbook sandbox up`)", 1)
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
    from runbook_sandbox import manager

    manager.down()
    click.echo("sandbox down", err=True)


@click.command()
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

    lean_imports()
    from runbook_kit.runner import run_notebook
    from runbook_sandbox import manager
    from runbook_sandbox.scenarios import SCENARIOS

    chosen = SCENARIOS.get(scenario)
    if chosen is None or not chosen.runbook:
        demoable = [n for n, s in SCENARIOS.items() if s.runbook]
        fail(f"no demo for scenario {scenario!r}; choose one of: {', '.join(demoable)}")
    with tempfile.TemporaryDirectory(prefix="runbook-demo-") as state:
        click.echo(f"starting the sandbox with scenario {scenario!r}: {chosen.description}", err=True)
        try:
            info = manager.up(scenario, state_dir=Path(state))
        except RunbookError as exc:
            fail(str(exc), 1)
        try:
            click.echo(f"running {chosen.runbook} ...", err=True)
            result = run_notebook(chosen.runbook, parameters=chosen.parameters, incident=f"demo-{scenario}",
                                  store=store, env=info.env)
        finally:
            manager.down(state_dir=Path(state))
    click.echo(f"planted cause: {chosen.cause}", err=True)
    report(result)
    sys.exit(result.exit_code)
