"""The public surface of rk.pg and rk.aws, and the connections plot, checked."""

from __future__ import annotations

import inspect
import subprocess
import sys

from pg_rows import many, snapshot

from runbook_kit import aws, pg


def public(module) -> set[str]:
    return {n for n, v in vars(module).items()
            if not n.startswith("_") and not inspect.ismodule(v) and n not in {"annotations"}}


def test_all_is_exactly_what_is_exported():
    assert set(pg.__all__) == public(pg)
    assert set(aws.__all__) == public(aws)


def test_helpers_take_keyword_only_arguments():
    for module in (pg, aws):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                params = list(inspect.signature(obj).parameters.values())
                positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
                assert len(positional) <= 1, f"{module.__name__}.{name}: {positional}"


def test_importing_the_kit_and_its_db_facade_stays_cheap():
    heavy = ("boto3", "psycopg", "matplotlib", "kubernetes", "pandas")
    code = (f"import sys, runbook_kit as rk; rk.pg; rk.aws; "
            f"print(sorted(m for m in {heavy} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_plot_shows_connections_by_state_and_by_application():
    snap = snapshot(many(30, app="billing-worker", state="idle in transaction", state_min=20)
                    + many(5, app="web", state="active"))
    fig = pg.plot_connections(snap)
    by_state, by_app = fig.axes[:2]
    heights = {t.get_text(): p.get_height() for t, p in zip(by_state.get_xticklabels(), by_state.patches,
                                                             strict=True)}
    assert heights == {"idle in transaction": 30, "active": 6}
    assert [t.get_text() for t in by_app.get_yticklabels()] == ["billing-worker", "web", "runbook_kit"]
