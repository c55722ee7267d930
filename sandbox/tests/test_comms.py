"""The sandbox's Slack / Statuspage / PagerDuty stand-ins check request shapes like the real APIs."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from runbook_sandbox import manager
from runbook_sandbox.comms import CommsServer


@pytest.fixture
def server():
    s = CommsServer()
    s.start()
    yield s
    s.stop()


def post(url: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_slack_answers_like_the_web_api(server):
    client = WebClient(token="xoxb-test", base_url=server.url + "/api/")
    parent = client.chat_postMessage(channel="C1", text="header")
    reply = client.chat_postMessage(channel="C1", text="reply", thread_ts=parent["ts"])
    client.chat_update(channel="C1", ts=parent["ts"], text="header v2")
    thread = client.conversations_replies(channel="C1", ts=parent["ts"])["messages"]
    assert [m["text"] for m in thread] == ["header v2", "reply"] and reply["message"]["thread_ts"]
    for call, error in ((lambda: client.chat_postMessage(channel="C1", text="x", thread_ts="1.2"),
                         "thread_not_found"),
                        (lambda: client.chat_update(channel="C1", ts="9.9", text="x"), "message_not_found"),
                        (lambda: WebClient(token="bad", base_url=server.url + "/api/").auth_test(),
                         "invalid_auth")):
        with pytest.raises(SlackApiError) as err:
            call()
        assert err.value.response["error"] == error


def test_statuspage_and_pagerduty_refuse_bad_shapes(server):
    url = f"{server.url}/v1/pages/p1/incidents"
    assert post(url, {"incident": {"name": "x", "status": "investigating"}})[0] == 401
    auth = {"Authorization": "OAuth key-123456"}
    assert post(url, {"incident": {"name": "x", "status": "broken"}}, auth)[0] == 422
    assert post(url, {"incident": {"status": "investigating"}}, auth)[0] == 422
    status, created = post(url, {"incident": {"name": "x", "status": "investigating", "body": "b"}}, auth)
    assert status == 201 and created["id"]
    pd = f"{server.url}/v2/enqueue"
    status, answer = post(pd, {"routing_key": "short", "event_action": "trigger", "payload": {}})
    assert status == 400 and "'routing_key' must be 32 characters" in answer["errors"]
    good = {"routing_key": "k" * 32, "event_action": "trigger", "dedup_key": "INC-1",
            "payload": {"summary": "s", "source": "api", "severity": "critical"}}
    assert post(pd, good) == (202, {"status": "success", "message": "Event processed", "dedup_key": "INC-1"})
    assert [r["service"] for r in json.loads(urllib.request.urlopen(server.url + "/_sandbox/received").read())
            ] == ["statuspage"] * 4 + ["pagerduty"] * 2


def test_the_manager_starts_it_and_exports_where_it_is(tmp_path: Path):
    state_dir = tmp_path / "sb"
    info = manager.up("crashloop", state_dir=state_dir, parts=())  # no part: comms only
    try:
        env = info.env
        assert env["RUNBOOK_SLACK_API_URL"].startswith("http://127.0.0.1:")
        assert len(env["PAGERDUTY_ROUTING_KEY"]) == 32
        client = WebClient(token=env["SLACK_BOT_TOKEN"], base_url=env["RUNBOOK_SLACK_API_URL"])
        assert client.auth_test()["ok"]
    finally:
        manager.down(state_dir=state_dir)
    with pytest.raises(OSError):
        urllib.request.urlopen(env["RUNBOOK_SLACK_API_URL"], timeout=2)
