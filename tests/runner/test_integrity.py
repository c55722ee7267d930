"""Records that neither lie nor vanish: kill -9, SIGTERM while writing, output floods, the fallback store,
planted symlinks, and the exit codes that say which of these happened."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbook_kit import record
from runbook_kit.runner import run_notebook

PARAMS = (
    "code",
    "name = 'world'  # who\nratio = 0.5  # a float\ndry_run = True  # no writes\n",
    ["parameters"],
)


def runbook(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runbook_kit.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def meta_of(path: Path | str) -> dict:
    return json.loads(Path(path).read_text())["metadata"]["runbook_kit"]


def wait_for(predicate, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_kill_9_mid_action_then_status_shows_aborted_with_the_applied_action(write_notebook, store, tmp_path):
    pidfile = tmp_path / "kernel.pid"
    nb = write_notebook(
        "mitigate",
        PARAMS,
        ("code", f"import os\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))"),
        ("markdown", "## Scale up"),
        (
            "code",
            "import time, runbook_kit as rk\n"
            "rk.action('scaled payments/api 3 -> 6', outcome='applied', command='kubectl scale ...')\n"
            "time.sleep(120)",
        ),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook_kit.cli", "run", nb, "--incident", "INC-K9", "--store", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def action_stored():  # the action reached the store while its cell was still running
            for path in (store / "INC-K9").glob("*.ipynb") if (store / "INC-K9").exists() else []:
                meta = meta_of(path)
                if meta["status"] == "running" and any(e["kind"] == "action" for e in meta["entries"]):
                    return path
            return None

        path = wait_for(action_stored)
        proc.kill()
        proc.wait(timeout=30)
        kernel = int(pidfile.read_text())

        def kernel_gone():  # the kernel follows its runner (ipykernel polls its parent): no orphan acts on
            try:
                os.kill(kernel, 0)
            except ProcessLookupError:
                return True
            return (
                Path(f"/proc/{kernel}/stat").exists()
                and Path(f"/proc/{kernel}/stat").read_text().split(")")[-1].split()[0] == "Z"
            )

        wait_for(kernel_gone, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if pidfile.exists():  # the orphaned kernel
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert json.loads((store / "INC-K9" / "incident.json").read_text())["runs"][0]["status"] == "running"

    shown = runbook("status", "INC-K9", "--store", str(store))
    assert shown.returncode == 0, shown.stderr
    assert "aborted" in shown.stdout and "runner is gone" in shown.stdout
    assert "[action:applied] scaled payments/api 3 -> 6" in shown.stdout

    meta = meta_of(path)
    assert meta["status"] == "aborted" and f"pid {proc.pid}" in meta["failure"]
    assert [e["title"] for e in meta["entries"] if e["kind"] == "action"] == ["scaled payments/api 3 -> 6"]
    cells = json.loads(path.read_text())["cells"]
    assert "ABORTED" in cells[0]["source"] and "scaled payments/api 3" in cells[0]["source"]
    banner = [i for i, c in enumerate(cells) if "runbook-error" in c["metadata"].get("tags", [])]
    assert banner and "time.sleep" not in cells[banner[0]]["source"]  # the banner precedes the cell
    assert cells[banner[0] + 1]["metadata"]["papermill"]["status"] == "failed"
    assert path.with_suffix(".html").is_file()
    run = json.loads((store / "INC-K9" / "incident.json").read_text())["runs"][0]
    assert run["status"] == "aborted" and run["actions"][0]["outcome"] == "applied"

    # a later run of the incident never lists it as running
    quick = write_notebook("quick", PARAMS)
    assert run_notebook(quick, incident="INC-K9", store=str(store)).status == "succeeded"
    runs = json.loads((store / "INC-K9" / "incident.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["aborted", "succeeded"]


def test_a_live_runner_is_not_finalized(write_notebook, store):
    from runbook_kit.recorder import runner_identity
    from runbook_kit.recovery import finalize_stale_runs
    from runbook_kit.store import LocalStore

    incident = {
        "incident": "INC-L",
        "runs": [{"record_id": "INC-L/x", "status": "running", "runner": runner_identity()}],
    }
    (store / "INC-L").mkdir(parents=True)
    (store / "INC-L" / "incident.json").write_text(json.dumps(incident))
    assert finalize_stale_runs(LocalStore(str(store)), "INC-L") == []
    elsewhere = {**incident["runs"][0], "runner": {"host": "another-host", "pid": 1, "start": 1}}
    (store / "INC-L" / "incident.json").write_text(json.dumps({"runs": [elsewhere]}))
    assert finalize_stale_runs(LocalStore(str(store)), "INC-L") == []  # cannot tell from here


def test_a_reused_pid_does_not_keep_a_dead_run_running(store):
    from runbook_kit.recorder import runner_identity
    from runbook_kit.recovery import finalize_stale_runs
    from runbook_kit.store import LocalStore

    me = runner_identity()  # this pid is alive, but started at another time: another process
    run = {"record_id": "INC-R/gone", "status": "running", "runner": {**me, "start": (me["start"] or 0) + 1}}
    (store / "INC-R").mkdir(parents=True)
    (store / "INC-R" / "incident.json").write_text(json.dumps({"runs": [run]}))
    if me["start"] is None:
        pytest.skip("no /proc start times on this platform")
    done = finalize_stale_runs(LocalStore(str(store)), "INC-R")
    assert [r["status"] for r in done] == ["aborted"]


_SLOW_STORE = """
import sys, time, pathlib
from runbook_kit import store as st, runner

class SlowHtml(st.LocalStore):
    def write(self, key, data):
        if key.endswith(".html"):
            pathlib.Path(sys.argv[3]).write_text("exporting")
            time.sleep(3)
        return super().write(key, data)

st._SCHEMES["slow://"] = lambda loc: SlowHtml(loc[len("slow://"):])
result = runner.run_notebook(sys.argv[1], incident="INC-T", store="slow://" + sys.argv[2], timeout=60)
print(result.status, result.exit_code)
sys.exit(result.exit_code)
"""


def test_sigterm_while_the_final_record_is_written_is_held_until_the_last_byte(
    write_notebook, store, tmp_path
):
    nb = write_notebook("ok", PARAMS, ("code", "import runbook_kit as rk\nrk.finding('done')"))
    marker = tmp_path / "exporting"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_STORE, nb, str(store), str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(marker.exists)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and out.split() == ["succeeded", "0"], err
    assert "received SIGTERM while writing the record; the record was completed first" in err
    run = json.loads((store / "INC-T" / "incident.json").read_text())["runs"][0]
    assert run["status"] == "succeeded" and run["html"] and Path(run["html"]).is_file()
    assert meta_of(run["notebook"])["status"] == "succeeded"


def test_an_output_flood_is_capped_head_and_tail_kept_entries_never_cut(write_notebook, store):
    nb = write_notebook(
        "flood",
        PARAMS,
        (
            "code",
            "import sys, runbook_kit as rk\nprint('FIRST LINE')\nfor i in range(20000):\n"
            "    print(f'line {i:06d} ' + 'x' * 90)\n    if i == 10000: rk.finding('midway')\n"
            "print('LAST LINE')",
        ),
        ("code", "print('small ' * 10)"),
    )
    result = run_notebook(
        nb, incident="INC-O", store=str(store), cell_output_cap=50_000, record_output_cap=80_000
    )
    assert result.status == "succeeded"
    assert Path(result.notebook_path).stat().st_size < 150_000  # 2 MB of output, capped
    cells = json.loads(Path(result.notebook_path).read_text())["cells"]
    flood = next(c for c in cells if "FIRST LINE" in "".join(o.get("text", "") for o in c.get("outputs", [])))
    text = "".join(o.get("text", "") for o in flood["outputs"] if o["output_type"] == "stream")
    assert "LAST LINE" in text and "characters of output cut here" in text
    # one note, however many times the flood was compacted while it ran, and its count adds up
    notes = [o["text"] for o in flood["outputs"] if "characters of output cut here" in o.get("text", "")]
    assert len(notes) == 1
    cut = int(re.search(r"([\d,]+) characters", notes[0]).group(1).replace(",", ""))
    printed = len("FIRST LINE\n") + 20000 * len(f"line {0:06d} " + "x" * 90 + "\n") + len("LAST LINE\n")
    assert len(text) - len(notes[0]) + cut == printed
    assert [e.title for e in record.read_entries({"cells": [flood]})] == ["midway"]
    assert any("small" in "".join(o.get("text", "") for o in c.get("outputs", [])) for c in cells)
    assert Path(result.html_path).stat().st_size < 600_000


@pytest.mark.parametrize(
    ("outputs", "limit"),
    [
        ([{"output_type": "stream", "name": "stdout", "text": "a" * 1000}], 100),
        ([{"output_type": "stream", "name": "stdout", "text": "b" * 10} for _ in range(100)], 100),
        ([{"output_type": "display_data", "data": {"text/plain": "c" * 500}, "metadata": {}}] * 5, 100),
    ],
)
def test_cap_outputs_keeps_within_the_limit_and_says_what_was_cut(outputs, limit):
    from runbook_kit.recorder import cap_outputs

    kept, cut = cap_outputs(outputs, limit)
    notes = [o for o in kept if "cut here" in o.get("text", "")]
    assert cut > 0 and len(notes) == 1 and f"{cut:,} characters" in notes[0]["text"]
    total = sum(len(o.get("text", "")) + len(o.get("data", {}).get("text/plain", "")) for o in kept)
    assert total - len(notes[0]["text"]) <= limit
    assert cap_outputs(outputs, 10**9) == (outputs, 0)


def test_run_timeout_bounds_the_run_and_its_record(write_notebook, store):
    nb = write_notebook("slow", PARAMS, ("code", "print('x' * 10**6)\nimport time\ntime.sleep(60)"))
    result = run_notebook(nb, incident="INC-TO", store=str(store), timeout=4, cell_timeout=None)
    assert result.status == "failed" and "run exceeded its 4 s timeout" in result.failure
    assert meta_of(result.notebook_path)["status"] == "failed"


def test_fallback_run_exits_4_and_the_primary_learns_of_it_when_it_is_back(write_notebook, tmp_path):
    primary, fallback = tmp_path / "primary", tmp_path / "unsent"
    primary.write_text("a file where the store folder should be")
    nb = write_notebook("p", PARAMS, ("code", "import runbook_kit as rk\nrk.finding('kept')"))
    first = run_notebook(nb, incident="INC-FB", store=str(primary / "store"), fallback_store=str(fallback))
    assert first.exit_code == 4 and Path(first.notebook_path).parent == fallback / "INC-FB"
    primary.unlink()
    second = run_notebook(nb, incident="INC-FB", store=str(primary / "store"), fallback_store=str(fallback))
    assert second.exit_code == 0
    runs = json.loads((primary / "store" / "INC-FB" / "incident.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    assert (
        runs[0]["recovered_from"] == first.notebook_path
        and "NotADirectoryError" in runs[0]["recovered_because"]
    )
    assert Path(runs[0]["notebook"]).parent == primary / "store" / "INC-FB"
    assert meta_of(runs[0]["notebook"])["entries"][0]["title"] == "kept"
    marked = json.loads((fallback / "INC-FB" / "incident.json").read_text())["runs"]
    assert marked[0]["copied_to_primary"] == runs[0]["notebook"]


def test_store_and_fallback_unwritable_is_one_line_exit_2_nothing_ran(write_notebook, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    marker = tmp_path / "ran"
    nb = write_notebook("p", PARAMS, ("code", f"open({str(marker)!r}, 'w')"))
    result = runbook(
        "run", nb, "--store", str(blocker / "a"), env={"RUNBOOK_FALLBACK_STORE": str(blocker / "b")}
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert (
        lines[-1].startswith("runbook: the record could not be written") and "Traceback" not in result.stderr
    )
    assert not marker.exists()


def test_a_symlink_planted_at_the_lock_file_truncates_nothing(write_notebook, store, tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("do not truncate me")
    (store / "INC-SL").mkdir(parents=True)
    (store / "INC-SL" / ".incident.json.lock").symlink_to(outside)
    nb = write_notebook("p", PARAMS, ("code", "import runbook_kit as rk\nrk.finding('kept')"))
    result = run_notebook(nb, incident="INC-SL", store=str(store), fallback_store=str(tmp_path / "unsent"))
    assert outside.read_text() == "do not truncate me"
    assert result.exit_code == 4 and Path(result.notebook_path).is_relative_to(tmp_path / "unsent")
    assert "lock file" in result.recorded_elsewhere


def test_a_gap_makes_the_run_completed_with_gaps_exit_3(write_notebook, store):
    gap = {"kind": "gap", "title": "cloudtrail not readable (AccessDenied)", "severity": "medium"}
    nb = write_notebook(
        "g",
        PARAMS,
        (
            "code",
            "from IPython.display import display\n"
            f"display({{{record.MIME!r}: {gap!r}, 'text/plain': 'gap'}}, raw=True)",
        ),
    )
    result = run_notebook(nb, incident="INC-G", store=str(store))
    assert result.status == "completed-with-gaps" and result.exit_code == 3
    assert result.to_json()["gaps"][0]["title"].startswith("cloudtrail")
    run = json.loads((store / "INC-G" / "incident.json").read_text())["runs"][0]
    assert run["status"] == "completed-with-gaps" and run["gaps"][0]["kind"] == "gap"


def test_the_cli_failure_line_is_redacted_like_the_record(write_notebook, tmp_path):
    password = "S3cr3t-pa55word-42"
    nb = write_notebook(
        "leak",
        (
            "code",
            "dsn = 'postgresql://app@db:5432/app'  # where\ndb_password = ''  # secret\n",
            ["parameters"],
        ),
        (
            "code",
            "raise ConnectionError(f'cannot connect to postgresql://app:{db_password}@db:5432/app "
            "password={db_password} ({db_password})')",
        ),
    )
    for extra in ([], ["--json"]):
        result = runbook("run", nb, "-p", "db_password", password, "--store", str(tmp_path / "s"), *extra)
        assert result.returncode == 1
        assert password not in result.stderr and password not in result.stdout
        assert "ConnectionError" in (result.stderr + result.stdout) and "REDACTED" in (
            result.stderr + result.stdout
        )
    bad = runbook("run", nb, "-p", "db_password", password, "-p", "dsn", "x", "--timeout", f"-{password}")
    assert bad.returncode == 2 and password not in bad.stderr


def test_json_output_of_run_is_one_document(write_notebook, tmp_path):
    nb = write_notebook(
        "j",
        PARAMS,
        (
            "code",
            "import runbook_kit as rk\nrk.finding('found it', severity='high')\n"
            "rk.action('restart', outcome='dry-run', command='kubectl ...')",
        ),
    )
    result = runbook("run", nb, "--store", str(tmp_path / "s"), "--incident", "INC-J", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["status"] == "succeeded" and doc["exit_code"] == 0 and Path(doc["notebook"]).is_file()
    assert [f["title"] for f in doc["findings"]] == ["found it"]
    assert [a["outcome"] for a in doc["actions"]] == ["dry-run"] and doc["gaps"] == []
    assert doc["parameters"] == {} and doc["html"].endswith(".html")
    status = json.loads(runbook("status", "INC-J", "--store", str(tmp_path / "s"), "--json").stdout)
    assert status["runs"][0]["findings"][0]["title"] == "found it"


def test_progress_shows_the_running_step_on_a_terminal_only(write_notebook, tmp_path):
    import pty

    nb = write_notebook(
        "prog", PARAMS, ("markdown", "## Check the widgets"), ("code", "import time\ntime.sleep(2.5)")
    )
    args = [sys.executable, "-m", "runbook_kit.cli", "run", nb, "--store", str(tmp_path / "s")]
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the terminal closed
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=60)
    os.close(leader)
    assert proc.returncode == 0
    assert b"Check the widgets" in seen and b" s" in seen
    piped = runbook(*args[3:])
    assert piped.returncode == 0 and "Check the widgets" not in piped.stderr and "\r" not in piped.stderr


_XSS = [
    "<script>alert('xss')</script>",
    "<img src=x onerror=alert(1)>",
    "`<script>alert(2)</script>`",
    "<svg onload=alert(3)>",
    "[link](javascript:alert(4))",
    "</span><script>alert(5)</script>",
    "&lt;script&gt;alert(6)&lt;/script&gt;",
    "<iframe srcdoc='<script>alert(7)</script>'>",
]


def _live_markup(html: str) -> list[str]:
    from html.parser import HTMLParser

    found = []

    class Finder(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in ("script", "iframe", "svg", "img") and "alert" in str(attrs) + self.get_starttag_text():
                found.append(self.get_starttag_text())
            found.extend(f"{tag} {k}" for k, v in attrs if k.startswith("on") or "javascript:" in (v or ""))

        def handle_data(self, data):
            if self.lasttag == "script" and "alert" in data:
                found.append(data)

    Finder().feed(html)
    return found


@pytest.mark.parametrize("payload", _XSS)
def test_no_live_markup_from_run_data_in_the_html(write_notebook, store, payload):
    nb = write_notebook(
        "xss",
        PARAMS,
        ("markdown", "## Step"),
        (
            "code",
            "import runbook_kit as rk\n"
            "rk.finding(name, severity='high')\n"
            "rk.action(name, outcome='dry-run', command=name)\n"
            "raise ValueError(name)",
        ),
    )
    result = run_notebook(nb, parameters={"name": payload}, incident="INC-X", store=str(store))
    assert result.status == "failed"
    html = Path(result.html_path).read_text()
    assert _live_markup(html) == []
    cells = json.loads(Path(result.notebook_path).read_text())["cells"]
    for cell in cells[:1] + [c for c in cells if "runbook-error" in c["metadata"].get("tags", [])]:
        # the only tags in the summary and the banner are the kit's own
        assert set(re.findall(r"<\s*/?\s*([A-Za-z]+)", cell["source"])) <= {"code", "span"}
    # harmless text is not mangled: the payload reads as written once rendered
    import html as htmllib

    text = htmllib.unescape(" ".join(cells[0]["source"].split()))
    assert payload in text
    assert meta_of(result.notebook_path)["parameters"]["name"] == payload


def test_md_escape_is_inert_and_reads_the_same():
    from runbook_kit.recorder import md_escape

    for text in [*_XSS, "plain *bold* _it_ #1 a|b ~x~ \\ [x]", "line one\nline two"]:
        escaped = md_escape(text)
        assert not set("<>`*_[]|\\#\n") & set(escaped.replace("&#", ""))
        import html as htmllib

        assert htmllib.unescape(escaped) == " ".join(text.splitlines())


def test_runner_signature_stays_compatible():
    import inspect

    sig = inspect.signature(run_notebook)
    assert list(sig.parameters)[:8] == [
        "runbook",
        "parameters",
        "incident",
        "store",
        "env",
        "timeout",
        "cell_timeout",
        "kernel_name",
    ]
    assert all(p.kind is p.KEYWORD_ONLY for name, p in sig.parameters.items() if name != "runbook")


def test_status_of_an_unknown_incident_is_one_line_exit_2(tmp_path):
    for incident, message in (("INC-NONE", "no incident"), ("../etc", "incident id")):
        result = runbook("status", incident, "--store", str(tmp_path))
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1


def test_list_and_show_json():
    listed = json.loads(runbook("list", "--json").stdout)
    names = [b["name"] for b in listed["runbooks"]]
    assert "pod_crashloop" in names
    shown = json.loads(runbook("show", "pod_crashloop", "--json").stdout)
    assert shown["name"] == "pod_crashloop" and any(p["name"] == "dry_run" for p in shown["parameters"])


def test_a_runner_killed_after_writing_its_notebook_is_finalized_from_the_notebook(store):
    from runbook_kit.recovery import finalize_stale_runs
    from runbook_kit.store import LocalStore

    # killed between the final notebook write and the incident.json update: the notebook has the truth
    gone = {"host": __import__("socket").gethostname(), "pid": 2**22 + 12345, "start": 1}
    meta = {
        "status": "succeeded",
        "record_id": "INC-W/r",
        "runner": gone,
        "entries": [{"kind": "action", "title": "restarted", "outcome": "applied"}],
        "parameters": {},
    }
    (store / "INC-W").mkdir(parents=True)
    (store / "INC-W" / "r.ipynb").write_text(json.dumps({"cells": [], "metadata": {"runbook_kit": meta}}))
    run = {"record_id": "INC-W/r", "status": "running", "runner": gone, "notebook": "x"}
    (store / "INC-W" / "incident.json").write_text(
        json.dumps({"incident": {"severity": "SEV2"}, "runs": [run]})
    )
    done = finalize_stale_runs(LocalStore(str(store)), "INC-W")
    assert [(r["status"], r["actions"][0]["title"]) for r in done] == [("succeeded", "restarted")]
    data = json.loads((store / "INC-W" / "incident.json").read_text())
    assert data["incident"] == {"severity": "SEV2"}  # other sections of incident.json are kept
    assert [r["status"] for r in data["runs"]] == ["succeeded"]


@pytest.mark.parametrize("planted", ["incident.json", "folder"])
def test_symlinks_out_of_the_store_are_never_followed(write_notebook, store, tmp_path, planted):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "incident.json").write_text("precious")
    store.mkdir(parents=True)
    if planted == "folder":
        (store / "INC-S").symlink_to(outside, target_is_directory=True)
    else:
        (store / "INC-S").mkdir()
        (store / "INC-S" / "incident.json").symlink_to(outside / "incident.json")
    nb = write_notebook("p", PARAMS, ("code", "print('ok')"))
    result = run_notebook(nb, incident="INC-S", store=str(store), fallback_store=str(tmp_path / "unsent"))
    assert (outside / "incident.json").read_text() == "precious" and sorted(os.listdir(outside)) == [
        "incident.json"
    ]
    assert result.exit_code == 4 and "outside the store" in result.recorded_elsewhere


def test_summary_shows_names_as_written_and_escapes_what_could_break_out():
    from runbook_kit.recorder import summary_cell

    entry = record.Entry(
        "action", "scale <b>api</b>", outcome="dry-run", command="kubectl scale --replicas=`6`"
    )
    source = summary_cell(
        [entry],
        status="failed",
        runbook="pod_crash`loop<x>",
        incident="INC_1.2-a",
        failure=None,
        started="now",
        values={"ns": "a_b"},
    )["source"]
    assert "`pod_crash'loop<x>`" in source and "`INC_1.2-a`" in source  # code spans: inert, unmangled
    assert "<b>" not in source and "scale &lt;b&gt;api&lt;/b&gt;" in source
    assert "<code>kubectl scale --replicas=&#96;6&#96;</code>" in source


_SLOW_WRITES = """
import sys, time
from runbook_kit import store as st, runner

class SlowNotebooks(st.LocalStore):
    def write(self, key, data):
        if key.endswith(".ipynb"):
            time.sleep(2)  # a slow store: the runner is busy while the kernel keeps sending
        return super().write(key, data)

st._SCHEMES["slow://"] = lambda loc: SlowNotebooks(loc[len("slow://"):])
result = runner.run_notebook(sys.argv[1], incident="INC-HWM", store="slow://" + sys.argv[2], timeout=300)
print(result.notebook_path)
"""


def test_no_output_is_dropped_while_the_runner_is_busy_writing(write_notebook, store):
    nb = write_notebook(
        "busy",
        PARAMS,
        (
            "code",
            "import time, runbook_kit as rk\nfrom IPython.display import display\n"
            "print('start', flush=True)\ntime.sleep(2.5)\n"
            "for i in range(3000):  # more messages than both zmq queues hold by default\n    display(i)\n"
            "rk.action('after the burst', outcome='dry-run')",
        ),
    )
    done = subprocess.run(
        [sys.executable, "-c", _SLOW_WRITES, nb, str(store)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    cells = json.loads(Path(done.stdout.strip()).read_text())["cells"]
    shown = [
        o["data"]["text/plain"]
        for c in cells
        for o in c.get("outputs", [])
        if o.get("output_type") == "display_data"
        and "text/plain" in o.get("data", {})
        and record.MIME not in o["data"]
    ]
    assert shown == [str(i) for i in range(3000)]
    assert [
        e["title"]
        for e in json.loads(Path(done.stdout.strip()).read_text())["metadata"]["runbook_kit"]["entries"]
    ] == ["after the burst"]
