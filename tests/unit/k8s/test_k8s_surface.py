"""The public surface of rk.k8s, the import-cost rule, and plots without a GUI backend."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

import runbook_kit.k8s as k8s


def test_all_is_what_the_package_exports():
    public = {name for name in vars(k8s) if not name.startswith("_")}
    modules = {name for name, value in vars(k8s).items() if type(value).__name__ == "module"}
    assert set(k8s.__all__) == public - modules
    assert sorted(k8s.__all__) == sorted(set(k8s.__all__))


def test_helpers_take_keyword_only_arguments():
    import inspect

    for name in k8s.__all__:
        fn = getattr(k8s, name)
        if inspect.isfunction(fn) and (name.startswith(("plan_", "pod_", "verify", "diagnose", "node_"))):
            params = inspect.signature(fn).parameters.values()
            assert all(p.kind is p.KEYWORD_ONLY for p in params if p.name not in ("pods", "snap")), name


def test_views_take_a_snapshot_as_their_only_positional_argument():
    import inspect

    views = {"container_logs", "container_resources", "deployment_status", "diagnose_crashloop",
             "pod_events", "pod_status", "replicaset_status", "revision_diff", "rollout_history"}
    for name in views:
        first, *rest = inspect.signature(getattr(k8s, name)).parameters.values()
        assert first.name == "snap" and first.kind is first.POSITIONAL_ONLY and first.default is None, name
        assert all(p.kind is p.KEYWORD_ONLY for p in rest), name


def test_importing_the_kit_does_not_import_kubernetes_or_pandas():
    code = (
        "import sys, runbook_kit; "
        "print(sorted(m for m in ('kubernetes', 'pandas', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_plots_are_figures_without_pyplot():
    code = (
        "import sys, pandas as pd, runbook_kit.k8s as k\n"
        "pods = pd.DataFrame({'pod': ['a', 'b'], 'status': ['CrashLoopBackOff', 'Running'],\n"
        "    'restarts': [5, 0],\n"
        "    'created': pd.to_datetime(['2026-01-01T10:00Z', '2026-01-01T09:00Z'], utc=True)})\n"
        "res = pd.DataFrame({'pod': ['a'], 'container': ['api'], 'memory_limit_mib': [256.0],\n"
        "    'memory_usage_mib': [None]})\n"
        "figs = [k.plot_restarts(pods), k.plot_memory(res)]\n"
        "print([type(f).__name__ for f in figs], 'matplotlib.pyplot' in sys.modules,\n"
        "      any('unavailable' in t.get_text() for t in figs[1].axes[0].texts))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['Figure', 'Figure'] False True"


def test_plot_restarts_of_no_pods():
    fig = k8s.plot_restarts(pd.DataFrame(columns=["pod", "status", "restarts", "created"]))
    assert fig.axes[0].texts[0].get_text() == "no pods"
