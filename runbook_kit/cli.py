"""The `runbook` command: list, show and run runbooks.

Every error a user can cause (unknown runbook, bad parameter, unreachable backend) ends as one
readable line on stderr and a non-zero exit; a run that started always leaves its record.
Exit codes: 0 succeeded, 1 the run failed, 2 bad input, 128+N aborted by signal N.
Heavy imports (nbclient, nbconvert) happen inside the commands that need them.

Other distributions add commands through the `runbook_kit.commands` entry point group (the incident
sandbox adds `sandbox` and `demo`); they are loaded only when listed or invoked, so a production
install shows only the commands that work there. Plugins use `fail`, `report` and `lean_imports`.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Any, NoReturn

import click

from runbook_kit.errors import RunbookError

__all__ = ["cli", "fail", "lean_imports", "main", "report"]

PLUGIN_GROUP = "runbook_kit.commands"


def lean_imports() -> None:
    """Called by the commands that execute notebooks, in this process only (never on library import).

    jsonschema (imported by nbformat) compiles an RFC 3987 grammar at import when `rfc3987_syntax` is
    installed (jupyterlab brings it): ~1.1 s on every `runbook run`. nbformat's schema has no IRI
    formats, so the runner does not need that checker; keeping the module out halves start-up.
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def fail(message: str, code: int = 2) -> NoReturn:
    """One readable line on stderr, then exit with `code` (2: bad input)."""
    click.echo(f"runbook: {message}", err=True)
    sys.exit(code)


class _Commands(click.Group):
    """The built-in commands plus those of installed plugins (entry points, loaded on demand)."""

    def _plugins(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP) if ep.name not in self.commands}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        ep = self._plugins().get(cmd_name)
        command = ep.load() if ep is not None else None
        return command if isinstance(command, click.Command) else None


@click.group(cls=_Commands,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="runbook_kit")
def cli() -> None:
    """Executable incident-response runbooks. The executed notebook is the incident record.

    \b
        runbook list
        runbook show pod_crashloop
        runbook run pod_crashloop -p namespace payments -p deployment api --incident INC-1234
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
        fail(str(exc))
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
        fail(f"cannot read parameter file {path}: {exc}")
    if not isinstance(data, dict):
        fail(f"parameter file {path} must hold a mapping of name: value")
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
    lean_imports()
    from runbook_kit.runner import run_notebook

    values = _param_file(param_file)
    values.update(dict(pairs))
    try:
        result = run_notebook(name, parameters=values, incident=incident, store=store,
                              timeout=timeout, cell_timeout=cell_timeout)
    except RunbookError as exc:
        fail(str(exc))
    report(result)
    sys.exit(result.exit_code)


def report(result: Any) -> None:
    """Findings and actions, the status line (stderr), then the record's path (stdout)."""
    for entry in result.entries:
        if entry.kind in ("finding", "action"):
            click.echo(f"  {entry.one_line()}", err=True)
    if result.failure:
        click.echo(f"runbook: {result.status}: {result.failure}", err=True)
    else:
        click.echo(f"runbook: {result.status}", err=True)
    click.echo(result.notebook_path)


# --- runbook serve: alert-triggered runs (runbook_kit.serve) ------------------------------------

@cli.command()
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The receiver's YAML: listen, queue, sources (credentials from files/env), routes.")
@click.option("--check-config", is_flag=True, help="Check the routes against the runbooks, then exit.")
@click.option("--listen", help="HOST:PORT to listen on (overrides `listen` in the config).")
@click.option("--timeline", "timeline_of", metavar="INCIDENT",
              help="Print an incident's alert timeline from the queue (firing, resolved, runs), then exit.")
def serve(config_path: str, check_config: bool, listen: str | None, timeline_of: str | None) -> None:
    """Receive alerts (Alertmanager, Grafana, SNS, PagerDuty) and run the routed runbooks.

    Every alert is stored (SQLite, WAL) before the sender gets its 202; runs are dry runs unless
    their route says `mutate: true`. SIGTERM stops it gracefully (runs in flight end as aborted, and
    the process then ends by that signal). Exit codes: 2 bad configuration, 1 cannot listen.

    \b
        runbook serve -c /etc/runbook/serve.yaml --check-config
        runbook serve -c /etc/runbook/serve.yaml --listen 0.0.0.0:9095
        runbook serve -c /etc/runbook/serve.yaml --timeline alert-payments-api
    """
    import dataclasses
    import logging
    import os

    from runbook_kit.serve import config as serve_config

    try:
        cfg = serve_config.load(config_path)
    except RunbookError as exc:
        fail(str(exc))
    if listen:
        host, _, port = listen.rpartition(":")
        if not port.isdigit():
            fail(f"--listen {listen!r}: expected HOST:PORT")
        cfg = dataclasses.replace(cfg, host=host or cfg.host, port=int(port))
    if timeline_of:
        import time

        from runbook_kit.serve.queue import Queue

        if not os.path.exists(cfg.queue):
            fail(f"no queue at {cfg.queue}")
        queue = Queue(cfg.queue, exclusive=False)
        try:
            events = queue.events(incident=timeline_of)
        finally:
            queue.close()
        if not events:
            fail(f"no alert events for incident {timeline_of!r} in {cfg.queue}", code=1)
        for event in events:
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["at"]))
            click.echo(f"{at}  {event['kind']:<16} {event['text']}")
        return
    if check_config:
        for route in cfg.routes:
            mode = "may change systems" if route.mutate else "dry run"
            click.echo(f"  {route.name}: {route.runbook} ({mode}), parameters "
                       f"{', '.join([*route.literals, *route.templates]) or 'defaults'}")
        click.echo(f"runbook: {cfg.path}: {len(cfg.routes)} route(s) OK; sources: "
                   f"{', '.join(cfg.sources) or 'none'}", err=True)
        return
    import uvicorn

    from runbook_kit.serve.app import JsonFormatter, create_app
    from runbook_kit.serve.queue import Queue

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("runbook.serve")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        queue = Queue(cfg.queue)
    except (RunbookError, OSError) as exc:
        fail(str(exc))
    logger.info("listening", extra={"fields": {"url": f"http://{cfg.host}:{cfg.port}", "queue": cfg.queue,
                                               "routes": len(cfg.routes), "sources": list(cfg.sources)}})
    server = uvicorn.Server(uvicorn.Config(create_app(cfg, queue=queue), host=cfg.host, port=cfg.port,
                                           log_level="warning", access_log=False, lifespan="on"))
    try:
        server.run()
    finally:
        queue.close()
    if not server.started:
        fail(f"could not listen on {cfg.host}:{cfg.port}", code=1)


def main() -> None:
    cli(prog_name="runbook")


if __name__ == "__main__":
    main()
