"""`runbook serve`: alerts in, executed records out.

    sources/   verify and normalize each sender's request into AlertEvents (4xx when refused)
    config     the receiver's YAML: listen address, queue, senders' credentials (files / env), routes
    routes     alert labels → runbook, parameters (templates), incident, mutate; checked at load
    queue      SQLite (WAL): alerts, runs (leases, heartbeats), the timeline; recover() after a crash
    intake     one transaction per delivery: dedupe, resolve/cancel, cooldown, storm breaker, enqueue
    worker     bounded execution: each run a `runbook run` process, one per target; executors:
               a warm standby when one is ready, else a cold child
    warm       the pool of warm standbys (runbook_kit/standby.py): one run each, replaced after it
    recheck    is the alert still firing? (before a run that may mutate)
    recovery   mark the records of runs interrupted by a crash
    metrics    /metrics in the Prometheus text format
    app        the ASGI app (Starlette) tying them together

Nothing here is imported by `import runbook_kit`: Starlette and uvicorn load only for `runbook serve`.
"""
