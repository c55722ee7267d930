"""Applying a plan in an interactive kernel: a real IPython kernel, a real prompt on its stdin channel.

JupyterLab shows `input()` as a text box; here the test plays the engineer and answers the kernel's
`input_request` on the stdin channel, as the front end does. Writes go to a local HTTP server that
logs every request, so "nothing was changed" is checked where the change would land.
"""

from __future__ import annotations

import http.server
import os
import queue
import textwrap
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from jupyter_client.manager import KernelManager


class _Logged(http.server.BaseHTTPRequestHandler):
    log: ClassVar[list[str]] = []

    def do_PATCH(self) -> None:
        self.log.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Logged.log = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Logged)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _kernel(**env: str) -> tuple[KernelManager, Any]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("RUNBOOK_INCIDENT", "RUNBOOK_NAME", "RUNBOOK_HEADLESS", "RUNBOOK_READ_ONLY")}
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env={**base, **env}, cwd=os.getcwd())
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


@pytest.fixture
def kernel() -> Iterator[Any]:
    started: list[KernelManager] = []

    def start(**env: str) -> Any:
        km, kc = _kernel(**env)
        started.append(km)
        return kc

    yield start
    for km in started:
        km.shutdown_kernel(now=True)


PLAN = """
import urllib.request
import runbook_kit as rk

def make_plan():
    def execute(dry_run):
        req = urllib.request.Request("{url}/scale", method="PATCH", data=b"{{}}")
        return urllib.request.urlopen(req, timeout=5).read()
    return rk.Plan(action="scale", target="deployment/api in namespace payments", backend="k8s",
                   command="kubectl scale deployment/api -n payments --replicas=5", execute=execute,
                   targets=["deployment/api"])
"""


def run(kc: Any, code: str, answer: str | None = None) -> tuple[str, list[str]]:
    """Execute `code`; answer the input() prompt if asked. Returns (stdout text, prompts seen)."""
    msg_id = kc.execute(textwrap.dedent(code), allow_stdin=True)
    prompts: list[str] = []
    while True:
        try:
            req = kc.get_stdin_msg(timeout=0.2)
        except queue.Empty:
            req = None
        if req is not None:
            prompts.append(req["content"]["prompt"])
            assert answer is not None, f"unexpected prompt: {req['content']['prompt']}"
            kc.input(answer)
        try:
            reply = kc.get_shell_msg(timeout=0.2)
        except queue.Empty:
            continue
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    out = []
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            break
        if msg["parent_header"].get("msg_id") == msg_id:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append(f"ERROR {msg['content']['ename']}: {msg['content']['evalue']}")
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
    return "".join(out), prompts


APPLY = """
result = rk.apply(make_plan(), dry_run=False)
print("OUTCOME", result.outcome, rk.record.entries_this_session()[-1].details.get("why", ""))
"""


def test_applying_interactively_asks_first_and_shows_the_plan_and_its_command(kernel, server):
    kc = kernel()
    run(kc, PLAN.format(url=server))
    out, prompts = run(kc, APPLY, answer="yes")
    assert "OUTCOME applied" in out and _Logged.log == ["/scale"]
    [prompt] = prompts
    assert "kubectl scale deployment/api -n payments --replicas=5" in prompt
    assert "scale: deployment/api in namespace payments" in prompt and "Type 'yes' to apply" in prompt


def test_anything_but_yes_changes_nothing_and_is_recorded_as_refused(kernel, server):
    kc = kernel()
    run(kc, PLAN.format(url=server))
    out, prompts = run(kc, APPLY, answer="")
    assert len(prompts) == 1 and "OUTCOME refused not confirmed at the prompt" in out
    assert _Logged.log == []
    out, _ = run(kc, "rk.apply(make_plan()); print('DRY', rk.record.entries_this_session()[-1].outcome)")
    assert "DRY dry-run" in out  # a dry run never asks


def test_a_stale_plan_is_refused_or_replanned_before_it_is_applied(kernel, server):
    kc = kernel(RUNBOOK_PLAN_MAX_AGE_MIN="0.002")  # 0.12 s
    run(kc, PLAN.format(url=server))
    out, prompts = run(kc, "import time\nplan = make_plan()\ntime.sleep(0.5)\n" + APPLY.replace(
        "make_plan()", "plan"))
    assert prompts == [] and "re-run the plan cell, then apply" in out and _Logged.log == []
    code = ("import dataclasses\nplan = dataclasses.replace(make_plan(), replan=make_plan)\ntime.sleep(0.5)\n"
            + APPLY.replace("make_plan()", "plan"))
    out, prompts = run(kc, code, answer="yes")
    assert len(prompts) == 1 and "OUTCOME applied" in out and _Logged.log == ["/scale"]
    out, _ = run(kc, "print([e.title for e in rk.record.entries_this_session() if e.kind == 'event'])")
    assert "re-planned before applying: scale: deployment/api in namespace payments" in out


def test_a_headless_kernel_never_waits_for_an_answer(kernel, server):
    kc = kernel(RUNBOOK_INCIDENT="INC-1", RUNBOOK_NAME="k8s_mitigation")
    run(kc, PLAN.format(url=server))
    out, prompts = run(kc, APPLY)
    assert prompts == [] and "OUTCOME applied" in out and _Logged.log == ["/scale"]
