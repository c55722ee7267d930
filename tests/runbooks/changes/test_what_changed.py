"""what_changed against the sandbox's latency scenario: the planted deployment first, the rest shown,
security findings listed and never blamed, unreadable sources as gaps (unconfigured ones as info),
Secret values never read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runbook_kit.runner import run_notebook
from runbook_sandbox import timeline as tl

LATENCY = {
    "namespace": tl.LATENCY_NAMESPACE,
    "load_balancer": tl.LATENCY_LOAD_BALANCER,
    "codedeploy_application": tl.LATENCY_CODEDEPLOY_APP,
}


def titles(result: Any) -> list[str]:
    return [e.title for e in result.findings]


def test_the_planted_deployment_is_named_and_the_other_changes_are_shown(
    sandbox: Any, tmp_path: Path
) -> None:
    result = run_notebook(
        "what_changed",
        parameters=LATENCY,
        incident="INC-80",
        store=str(tmp_path),
        env=sandbox.env,
        timeout=600,
    )
    assert result.status == "succeeded", result.failure
    cause = next(f for f in result.findings if f.title.startswith("Likely cause"))
    assert "CodeDeploy deployment" in cause.title and tl.LATENCY_CODEDEPLOY_APP in cause.title
    assert cause.details["source"] == "codedeploy"
    counted = next(f for f in result.findings if f.title.endswith("change(s) in the window"))
    sources = counted.details["by_source"]
    assert {"codedeploy", "kubernetes", "cloudtrail", "cloudformation", "git"} <= set(sources)
    security = next(f for f in result.findings if "security finding(s)" in f.title)
    assert "not ranked among the changes" in security.title and security.severity == "info"
    assert security.details["findings"][0].startswith("HIGH securityhub")
    # security findings are context: never the likely cause, never a gap
    assert not any("GuardDuty" in t or "Security Hub" in t for t in titles(result) if t.startswith("Likely"))
    assert not [e for e in result.entries if e.kind == "gap"]
    record = Path(result.record_path).read_text() if hasattr(result, "record_path") else ""
    for path in tmp_path.rglob("*.ipynb"):
        record += path.read_text()
    assert "checkout-db-credentials" in record  # the Secret's name and time are on the timeline...
    assert "c2FuZGJveC1ub3QtYS1zZWNyZXQ=" not in record  # ...its value never


def test_unreadable_sources_are_gaps_and_unconfigured_ones_info(sandbox: Any, tmp_path: Path) -> None:
    not_a_repo = tmp_path / "not-a-repo"
    not_a_repo.mkdir()
    result = run_notebook(
        "what_changed",
        parameters={"namespace": tl.LATENCY_NAMESPACE, "infra_repos": str(not_a_repo)},
        incident="INC-81",
        store=str(tmp_path),
        env=sandbox.env,
        timeout=600,
    )
    assert result.status == "completed-with-gaps", result.failure
    [gap] = [e for e in result.entries if e.kind == "gap"]  # the repository path is not a clone
    assert gap.title == "infrastructure repositories" and "not a git repository" in gap.details["why"]
    assert "infra_repos" in gap.details["fix"]
    info = {f.details["source"] for f in result.findings if f.details.get("role") == "not-configured"}
    assert info == {"codedeploy", "symptom"}
    counted = next(f for f in result.findings if "change(s) in the window" in f.title)
    assert "incomplete: changes from infrastructure repositories could not be read" in counted.title
    assert any(t.startswith("No symptom start to correlate with (symptom not read") for t in titles(result))


def test_without_a_namespace_the_kubernetes_sources_are_gaps(sandbox: Any, tmp_path: Path) -> None:
    result = run_notebook(
        "what_changed", parameters={}, incident="INC-82", store=str(tmp_path), env=sandbox.env, timeout=600
    )
    assert result.status == "succeeded", result.failure  # nothing unreadable: no gap, exit 0
    info = {f.details["source"]: f.title for f in result.findings
            if f.details.get("role") == "not-configured"}
    assert info["kubernetes rollouts"] == "kubernetes rollouts not read: not configured: no namespace"
    assert "configmaps and secrets" in info and "cloudtrail" not in info and "cloudformation" not in info
    assert not [e for e in result.entries if e.kind == "gap"]
