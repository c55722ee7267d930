"""The `runbook` command: list, show and run runbooks.

Every error a user can cause (unknown runbook, bad parameter, unreachable backend) ends as one
readable line on stderr and a non-zero exit; a run that started always leaves its record. Everything
printed goes through the same redactor as the record.
Exit codes of `runbook run`: 0 succeeded, 1 the run failed (or its record could not be written once
it had started), 2 bad input (nothing ran; includes a store and fallback that cannot be written),
3 completed with gaps (a read could not be done), 4 succeeded but the record is in the fallback store,
128+N aborted by signal N (SIGTERM → 143).
Heavy imports (nbclient, nbconvert) happen inside the commands that need them.

Other distributions add commands through the `runbook_kit.commands` entry point group (the incident
sandbox adds `sandbox` and `demo`); they are loaded only when listed or invoked, so a production
install shows only the commands that work there. Plugins use `fail`, `report` and `lean_imports`.
"""

from __future__ import annotations

import json
import sys
import threading
import time
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


def fail(message: str, code: int = 2, *, redactor: Any = None) -> NoReturn:
    """One readable, redacted line on stderr, then exit with `code` (2: bad input)."""
    from runbook_kit.redact import Redactor

    line = " ".join(str(message).split())
    click.echo(f"runbook: {(redactor or Redactor.from_environment()).text(line)}", err=True)
    sys.exit(code)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


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
        runbook status INC-1234
    """


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
def list_(as_json: bool) -> None:
    """List the runbooks with their one-line purpose.

    \b
        runbook list
        runbook list --json
    """
    from runbook_kit import catalog

    books = catalog.runbooks()
    if as_json:
        _echo_json({"runbooks": [{"name": b.name, "title": b.title, "purpose": b.purpose, "path": str(b.path)}
                                 for b in books]})
        return
    width = max((len(b.name) for b in books), default=0)
    for book in books:
        click.echo(f"{book.name:<{width}}  {book.purpose or book.title}")


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
def show(name: str, as_json: bool) -> None:
    """Show a runbook's purpose and parameters (type, default or "required", help).

    \b
        runbook show db_connection_exhaustion
        runbook show db_connection_exhaustion --json
    """
    from runbook_kit import catalog, params

    try:
        book = catalog.find(name)
        declared = params.declared(catalog.load(book.path))
    except RunbookError as exc:
        fail(str(exc))
    if as_json:
        _echo_json({"name": book.name, "title": book.title, "purpose": book.purpose, "path": str(book.path),
                    "parameters": [{"name": p.name, "type": p.type, "default": p.default, "help": p.help,
                                    "required": p.required}
                                   for p in declared.values()]})
        return
    click.echo(f"{book.name}: {book.title}")
    if book.purpose:
        click.echo(f"  {book.purpose}")
    click.echo(f"  {book.path}\n\nParameters:")
    for p in declared.values():
        default = "required" if p.required else f"default {p.default}"
        text = p.help.split(":", 1)[1].strip() if p.required and ":" in p.help else p.help
        click.echo(f"  {p.name:<20} {p.type:<6} {default:<24} {text}")
    if not declared:
        click.echo("  (none)")


@cli.command()
@click.argument("incident")
@click.option("--store", help="A folder or s3://bucket/prefix (default $RUNBOOK_STORE, ./incidents).")
@click.option("--json", "as_json", is_flag=True, help="Print incident.json (after finalizing) instead.")
def status(incident: str, store: str | None, as_json: bool) -> None:
    """Show the runs of an incident; a run whose runner is gone is finalized as aborted first.

    \b
        runbook status INC-1234
        runbook status INC-1234 --json
    """
    from runbook_kit import params, recovery
    from runbook_kit.redact import Redactor
    from runbook_kit.store import open_store

    try:
        params.validate_incident_id(incident)
        data = recovery.read_incident(open_store(store), incident)
    except RunbookError as exc:
        fail(str(exc))
    if data is None:
        fail(f"no incident {incident!r} in the store")
    data = Redactor.from_environment().value(data)
    if as_json:
        _echo_json(data)
        return
    for run in data.get("runs", []):
        click.echo(f"{run.get('started', '')}  {run.get('runbook', '')}  {run.get('status', '')}  "
                   f"findings {len(run.get('findings', []))}  actions {len(run.get('actions', []))}  "
                   f"{run.get('notebook', '')}")
        if run.get("failure"):
            click.echo(f"    {run['failure']}")
        for action in run.get("actions", []):
            click.echo(f"    [action:{action.get('outcome')}] {action.get('title')}")


_RUN_HELP = """Run a runbook headless; the executed notebook is always written.

    \b
        runbook run pod_crashloop -p namespace payments -p deployment api --incident INC-1234
        runbook run db_connection_exhaustion -f params.yaml -p dry_run false
        runbook run pod_crashloop -p namespace payments --json

    \b
    As a Kubernetes Job (records on S3; the summary and exit codes are the same):
        runbook run pod_crashloop -p namespace payments --incident INC-1234 \\
            --on kubernetes --image registry.example/runbook-kit:1.4 --store s3://records/prod

    \b
    Exit codes:
      0    succeeded
      1    the run failed (cell error, dead kernel, timeout), or its record could not be
           written after it started
      2    bad input, nothing ran (unknown runbook, bad parameter or file, bad incident id,
           bad timeout, neither the store nor the fallback store writable)
      3    completed with gaps: some reads could not be done (named in the record)
      4    succeeded, but the record went to the fallback store
      128+N  aborted by signal N (SIGTERM: 143, SIGINT: 130)
    """


@cli.command(context_settings={"show_default": True}, help=_RUN_HELP)
@click.argument("name")
@click.option("-p", "--param", "pairs", nargs=2, multiple=True, metavar="KEY VALUE",
              help="A parameter; the value is coerced to the type the notebook declares.")
@click.option("-f", "--param-file", type=click.Path(dir_okay=False), help="YAML file of parameters.")
@click.option("--incident", help="Incident id (folder of the record). Default: adhoc-<UTC date>.")
@click.option("--store", help="A folder or s3://bucket/prefix (default $RUNBOOK_STORE, ./incidents).")
@click.option("--timeout", type=str, default="1800", metavar="SECONDS",
              help="Whole-run timeout in seconds, writing the record included.")
@click.option("--cell-timeout", type=str, default="600", metavar="SECONDS",
              help="Per-cell timeout in seconds.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document (status, record paths, findings, actions, gaps) on stdout.")
@click.option("--on", "executor", type=click.Choice(["local", "kubernetes"]), default="local",
              help="Where the run executes: here, or as a Kubernetes Job (an s3:// --store and an image).")
@click.option("--image", help="Kubernetes: the kit's image (default $RUNBOOK_IMAGE, else runbook.yaml "
              "jobs.image).")
@click.option("--job-namespace", help="Kubernetes: the Job's namespace (default jobs.namespace, else the "
              "kubeconfig context's).")
@click.option("--service-account", help="Kubernetes: the pod's ServiceAccount (default runbook-<runbook>).")
@click.option("--run-id", help="Kubernetes: run a submission whose Job exists once more (else it is "
              "attached).")
def run(name: str, pairs: tuple[tuple[str, str], ...], param_file: str | None, incident: str | None,
        store: str | None, timeout: str, cell_timeout: str, as_json: bool, executor: str = "local",
        image: str | None = None, job_namespace: str | None = None, service_account: str | None = None,
        run_id: str | None = None) -> None:
    run_command(name=name, pairs=pairs, param_file=param_file, incident=incident, store=store,
                timeout=timeout, cell_timeout=cell_timeout, as_json=as_json, executor=executor,
                job_options={"image": image, "namespace": job_namespace, "service_account": service_account},
                run_id=run_id)


def run_command(*, name: str, pairs: tuple[tuple[str, str], ...] = (), param_file: str | None,
                incident: str | None, store: str | None, timeout: str, cell_timeout: str,
                as_json: bool = False, executor: str = "local",
                job_options: dict[str, str | None] | None = None, run_id: str | None = None,
                kernel: Any = None) -> NoReturn:
    """`runbook run`, the whole of it (output, exit codes); `kernel`: a runner.StartedKernel to run on
    (runbook serve's warm standbys), so that a warm run is exactly a `runbook run`."""
    lean_imports()
    from runbook_kit import params
    from runbook_kit.jobs.executor import RunRequest
    from runbook_kit.redact import Redactor
    from runbook_kit.store import StoreUnwritable

    values: dict[str, Any] = {}
    redactor = Redactor.from_environment(extra=dict(pairs))
    progress = _Progress() if sys.stderr.isatty() and not as_json else None
    try:
        if param_file:
            values = params.load_parameter_file(param_file)
        values.update(dict(pairs))
        redactor = Redactor.from_environment(extra=values)
        request = RunRequest(runbook=name, parameters=values, incident=incident, store=store,
                             timeout=_seconds("--timeout", timeout), run_id=run_id,
                             cell_timeout=_seconds("--cell-timeout", cell_timeout),
                             on_step=progress.step if progress and executor == "local" else None)
        result = _executor(executor, job_options or {}, run_id, redactor, kernel=kernel).run(request)
    except StoreUnwritable as exc:
        fail(str(exc), 1 if getattr(exc, "after_start", False) else 2, redactor=redactor)
    except RunbookError as exc:
        detached = type(exc).__name__ == "Detached"
        fail(str(exc), 130 if detached else 1 if getattr(exc, "after_start", False) else 2, redactor=redactor)
    finally:
        if progress:
            progress.stop()
    if as_json:
        _echo_json(redactor.value(result.to_json()))
    else:
        report(result, redactor=redactor)
    sys.exit(result.exit_code)


def _executor(on: str, job_options: dict[str, str | None], run_id: str | None, redactor: Any, *,
              kernel: Any = None) -> Any:
    """`--on`: the local executor, or Kubernetes Jobs (runbook_kit.jobs) with their options."""
    from runbook_kit.errors import ParameterError
    from runbook_kit.jobs.executor import LocalExecutor

    if on == "local":
        if run_id or any(job_options.values()):
            raise ParameterError("--image, --job-namespace, --service-account and --run-id are for "
                                 "--on kubernetes")
        return LocalExecutor(kernel=kernel)
    from runbook_kit.jobs.submit import JobSettings, KubernetesExecutor

    settings = JobSettings.load(image=job_options.get("image"), namespace=job_options.get("namespace"),
                                service_account=job_options.get("service_account"))
    return KubernetesExecutor(settings, redactor=redactor)


def _seconds(option: str, text: str) -> float:
    from runbook_kit.errors import ParameterError

    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 < value < float("inf")):
        raise ParameterError(f"{option} must be a positive number of seconds, not {text!r}")
    return value


class _Progress:
    """On a terminal: which step (the notebook's heading) is running, and for how long, on one line."""

    def __init__(self) -> None:
        self.label, self.since = "starting the kernel", time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def step(self, index: int, heading: str) -> None:
        self.label, self.since = (heading or f"cell {index}")[:60], time.monotonic()

    def _loop(self) -> None:
        while not self._done.wait(0.5):
            click.echo(f"\r\x1b[K⏳ {self.label} — {time.monotonic() - self.since:.0f} s", err=True, nl=False)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        click.echo("\r\x1b[K", err=True, nl=False)


def report(result: Any, *, redactor: Any = None) -> None:
    """Findings, actions and gaps, the status line (stderr), then the record's path (stdout). Redacted."""
    from runbook_kit.redact import Redactor

    text = (redactor or Redactor.from_environment()).text
    for entry in result.entries:
        if entry.kind in ("finding", "action", "gap"):
            click.echo(text(f"  {entry.one_line()}"), err=True)
    line = f"runbook: {result.status}" + (f": {result.failure}" if result.failure else "")
    click.echo(text(" ".join(line.split())), err=True)
    if getattr(result, "recorded_elsewhere", None):
        click.echo(text(f"runbook: the store could not be written ({result.recorded_elsewhere}); "
                        "the record is in the fallback store, copied back by the next run of this incident"),
                   err=True)
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

    from runbook_kit.redact import Redactor
    from runbook_kit.serve.app import JsonFormatter, create_app
    from runbook_kit.serve.queue import Queue

    handler = logging.StreamHandler(sys.stderr)
    credentials = {f"{source}_{name}": value for source, fields in cfg.sources.items()
                   for name, value in fields.items() if isinstance(value, str)}
    handler.setFormatter(JsonFormatter(Redactor.from_environment(extra=credentials)))
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


# --- the incident around the runs (runbook_kit.incident_cli) -------------------------------------
def _add_incident_commands() -> None:
    from runbook_kit.incident_cli import incident

    cli.add_command(incident)


_add_incident_commands()


def main() -> None:
    cli(prog_name="runbook")


# --- runbook doctor ------------------------------------------------------------------------------

@cli.command()
@click.argument("runbook", required=False)
@click.option("-n", "--namespace", help="Namespace of the RBAC checks (default: the context's namespace).")
@click.option("--context", help="kubeconfig context (default: RUNBOOK_KUBE_CONTEXT, else the current one).")
@click.option("--dsn", help="DSN or a database name from runbook.yaml (default: RUNBOOK_DSN / PG*).")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(runbook: str | None, namespace: str | None, context: str | None, dsn: str | None,
           as_json: bool) -> None:
    """Check, before an incident, what a runbook (default: every runbook) will be able to do here.

    AWS identity and region, the Kubernetes context and each RBAC verb (SelfSubjectAccessReview),
    PostgreSQL connectivity and role grants: one line per check, with the command that fixes each
    missing one. Changes nothing. Exit codes: 0 all present, 1 something missing, 2 bad input.

    \b
        runbook doctor
        runbook doctor pod_crashloop -n payments
        runbook doctor db_connection_exhaustion --dsn orders --json
    """
    import json

    from runbook_kit.doctor import check_access

    try:
        report = check_access(runbook, namespace=namespace, context=context, dsn=dsn)
    except RunbookError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    sys.exit(report.exit_code)


# --- runbook rbac (runbook_kit.rbac) -------------------------------------------------------------

@cli.command()
@click.argument("runbook")
@click.option("-n", "--namespace", "namespaces", multiple=True, metavar="NAMESPACE",
              help="A namespace the runbook reads (repeatable): a Role and RoleBinding in each.")
@click.option("--cluster-wide", is_flag=True,
              help="Grant the namespaced rules in every namespace (in the ClusterRole) instead.")
@click.option("--service-account", help="ServiceAccount (default runbook-<runbook>, the Job executor's).")
@click.option("--service-account-namespace", metavar="NAMESPACE",
              help="Where the ServiceAccount lives (default: the first -n, else `default`).")
@click.option("--read-only", is_flag=True, help="Leave out what only mitigations need (diagnosis only).")
@click.option("--iam", is_flag=True, help="Also print the IAM policy of its AWS actions (for IRSA).")
@click.option("--iam-role-arn", metavar="ARN",
              help="IRSA: annotate the ServiceAccount with the IAM role its pods assume.")
@click.option("--sql", is_flag=True, help="Also print the PostgreSQL GRANTs it needs.")
@click.option("--db-role", metavar="ROLE", help="Database role of the GRANTs (default: the service account).")
@click.option("--json", "as_json", is_flag=True,
              help='One JSON document: {"kubernetes": a v1 List, "iam": ..., "sql": [...]}.')
def rbac(runbook: str, namespaces: tuple[str, ...], cluster_wide: bool, service_account: str | None,
         service_account_namespace: str | None, read_only: bool, iam: bool, iam_role_arn: str | None,
         sql: bool, db_role: str | None, as_json: bool) -> None:
    """Print the least-privilege identity RUNBOOK needs, from the permissions it declares.

    The ServiceAccount, a Role + RoleBinding per namespace for namespaced resources and a ClusterRole +
    ClusterRoleBinding for cluster-scoped ones (nodes, namespaces, pods of every namespace): exactly
    the verbs and resources its steps use (runbook_kit/permissions.py), never `*`. YAML, ready for
    `kubectl apply -f -`; --iam and --sql add the IAM policy and the GRANTs as `#` comments (kubectl
    ignores them), or as keys with --json. A drain evicts pods of every namespace on the node: give
    node_health and k8s_mitigation --cluster-wide when they may drain. Changes nothing. Exit codes:
    0 printed, 2 bad input (unknown runbook, no namespace for namespaced rules, a name Kubernetes
    refuses).

    \b
        runbook rbac pod_crashloop -n payments | kubectl apply -f -
        runbook rbac k8s_mitigation -n payments -n storefront --service-account-namespace runbooks
        runbook rbac node_health --iam --json
    """
    from runbook_kit import rbac as rbac_

    try:
        ident = rbac_.identity(runbook, namespaces=namespaces, service_account=service_account,
                               service_account_namespace=service_account_namespace,
                               cluster_wide=cluster_wide, read_only=read_only, iam_role_arn=iam_role_arn)
    except RunbookError as exc:
        fail(str(exc))
    objects = ident.kubernetes()
    policy = rbac_.iam_policy(ident) if iam else None
    grants = rbac_.sql_grants(ident, role=db_role or ident.service_account) if sql else []
    if as_json:
        doc: dict[str, Any] = {"kubernetes": {"apiVersion": "v1", "kind": "List", "items": objects}}
        if iam:
            doc["iam"] = policy
        if sql:
            doc["sql"] = grants
        _echo_json(doc)
    else:
        import yaml

        click.echo(yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True).rstrip())
        if policy is not None:
            click.echo(f"# IAM policy of {runbook}'s AWS actions (attach it to the IRSA role):")
            click.echo("\n".join(f"# {ln}" for ln in json.dumps(policy, indent=2).splitlines()))
        if grants:
            click.echo("# PostgreSQL, as an admin (on RDS: the master user):")
            click.echo("\n".join(f"# {g}" for g in grants))
    # what the runbook needs beyond this output, and what it does not need: said, never silently left out
    notes = [what for what, asked, has in (("also needs AWS actions (add --iam)", iam, ident.needs.iam),
                                           ("also needs PostgreSQL roles (add --sql)", sql, ident.needs.sql))
             if has and not asked]
    notes += [what for what, asked, has in (("makes no AWS call (no IAM policy)", iam, policy),
                                            ("needs no PostgreSQL role (no GRANT)", sql, grants),
                                            ("needs no Kubernetes permission (the ServiceAccount only)",
                                             True, ident.needs.k8s)) if asked and not has]
    if notes:
        click.echo(f"runbook: {runbook} " + "; ".join(notes), err=True)


if __name__ == "__main__":
    main()
