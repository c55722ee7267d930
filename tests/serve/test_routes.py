"""Routes and configuration as pure logic: templates, matching, coercion, incident ids, credentials."""

from __future__ import annotations

import pytest

from runbook_kit.serve import config
from runbook_kit.serve.routes import ConfigError, RouteError, Template, load_routes, match
from runbook_kit.serve.sources import AlertEvent


def _event(labels, annotations=None, source="alertmanager", status="firing"):
    return AlertEvent(
        source=source,
        status=status,
        labels=labels,
        annotations=annotations or {},
        starts_at="2026-11-30T10:00:00Z",
        fingerprint="f00d",
        delivery_id="d",
    )


ROUTE = {
    "name": "crash",
    "match": {"alertname": "KubePodCrashLooping"},
    "runbook": "pod_crashloop",
    "parameters": {
        "namespace": "{labels.namespace}",
        "deployment": "{labels.deployment}",
        "revision": "{annotations.revision}",
        "mitigation": "rollback",
    },
}


def test_template_renders_labels_annotations_and_braces():
    t = Template.parse("{{literal}} {labels.a}-{annotations.b}/{fingerprint}/{source}/{status}", "t")
    assert t.render(_event({"a": "A"}, {"b": "B"})) == "{literal} A-B/f00d/alertmanager/firing"
    with pytest.raises(RouteError, match="no label 'zz'"):
        Template.parse("{labels.zz}", "t").render(_event({"a": "A"}))


@pytest.mark.parametrize(
    "text",
    [
        "{labels}",
        "{labels.a.b}",
        "{labels.__class__.x}",
        "{0}",
        "{x!r}",
        "a{b",
        "}",
        "{labels[a]}",
        "{ annotations }",
    ],
)
def test_template_refuses_anything_but_placeholders(text):
    with pytest.raises(ConfigError):
        Template.parse(text, "t")


def test_spec_coerces_from_labels_and_forces_dry_run():
    [route] = load_routes([ROUTE])
    spec = route.spec(
        _event(
            {
                "alertname": "KubePodCrashLooping",
                "namespace": "shop",
                "deployment": "web",
                "severity": "page",
            },
            {"revision": "3"},
        )
    )
    assert spec.parameters == {
        "namespace": "shop",
        "deployment": "web",
        "revision": 3,
        "mitigation": "rollback",
        "dry_run": True,
    }
    assert spec.severity == "P1" and not spec.mutate  # the alert's `page` label, mapped
    assert spec.incident == "alert-KubePodCrashLooping-f00d"
    with pytest.raises(RouteError, match="parameter 'revision' expects int"):
        route.spec(
            _event(
                {"alertname": "KubePodCrashLooping", "namespace": "s", "deployment": "d"},
                {"revision": "three"},
            )
        )


def test_incident_ids_from_labels_are_made_safe():
    [route] = load_routes(
        [{**ROUTE, "incident": "INC/{labels.namespace}/../{labels.deployment}",
          "parameters": {"namespace": "payments"}}]
    )
    spec = route.spec(_event({"alertname": "KubePodCrashLooping", "namespace": "a b", "deployment": "c\nd"}))
    assert spec.incident == "INC-a-b-.-c-d"


def test_matching_first_route_wins_with_regex_and_sources():
    routes = load_routes(
        [
            {
                "name": "pd-only",
                "match": {"alertname": "X"},
                "sources": ["pagerduty"],
                "runbook": "pod_crashloop",
            },
            {"name": "critical", "match_re": {"severity": "critical|page"}, "runbook": "pod_crashloop"},
            {"name": "x", "match": {"alertname": "X"}, "runbook": "pod_crashloop"},
        ]
    )
    assert match(routes, _event({"alertname": "X"}, source="pagerduty")).name == "pd-only"
    assert match(routes, _event({"alertname": "X", "severity": "page"})).name == "critical"
    assert match(routes, _event({"alertname": "X", "severity": "pager"})).name == "x"  # fullmatch
    assert match(routes, _event({"alertname": "Y"})) is None


def test_mutate_needs_a_dry_run_parameter_and_sets_it():
    [route] = load_routes([{**ROUTE, "parameters": {"namespace": "payments"}, "mutate": True}])
    assert route.spec(_event({"alertname": "KubePodCrashLooping"})).parameters["dry_run"] is False
    with pytest.raises(ConfigError, match="must be true or false"):
        load_routes([{**ROUTE, "mutate": "yes"}])
    with pytest.raises(ConfigError, match="unknown key 'mutates'"):
        load_routes([{**ROUTE, "mutates": True}])
    with pytest.raises(ConfigError, match="two routes are named"):
        load_routes([ROUTE, ROUTE])


def test_credentials_from_files_and_environment_only(tmp_path, monkeypatch):
    (tmp_path / "t").write_text("from-file\n")
    monkeypatch.setenv("RK_TEST_TOKEN", "from-env")
    assert config.secret({"file": str(tmp_path / "t")}, "w") == "from-file"
    assert config.secret({"env": "RK_TEST_TOKEN"}, "w") == "from-env"
    for bad in ("inline", {"value": "x"}, {"file": str(tmp_path / "missing")}, {"env": "RK_UNSET_VAR_X"}):
        with pytest.raises(ConfigError):
            config.secret(bad, "w")
    path = tmp_path / "serve.yaml"
    path.write_text("sources:\n  alertmanager: {bearer_token: {env: RK_TEST_TOKEN}}\nroutes: []\n")
    cfg = config.load(path)
    assert cfg.sources["alertmanager"]["bearer_token"] == "from-env"
    assert "RK_TEST_TOKEN" in cfg.secret_env  # kept out of the runs' environment
