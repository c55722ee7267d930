"""`runbook run --on kubernetes` refuses what cannot make a safe Job: one line, exit 2, nothing sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from jobs_harness import BOOKS


@pytest.fixture
def env(tmp_path):
    books = tmp_path / "books"
    books.mkdir()
    (books / "hello_job.ipynb").write_text(json.dumps(BOOKS["hello_job"]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOK_", "AWS_", "KUBECONFIG"))}
    # no cluster at all: a refusal must come before anything is sent
    return {**env, "RUNBOOK_PATH": str(books), "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "none")}


def run(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "runbook_kit.cli", "run", "hello_job", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=env["HOME"],
    )


@pytest.mark.parametrize(
    ("args", "extra_env", "said"),
    [
        (
            ["--store", "s3://records/prod"],
            {},
            "--on kubernetes needs an image: pass --image, set RUNBOOK_IMAGE",
        ),
        (["--store", "./incidents", "--image", "kit:1"], {}, "needs an s3:// store"),
        ([], {"RUNBOOK_IMAGE": "kit:1"}, "needs an s3:// store"),  # the default store is a folder
        (
            ["--store", "s3://records/prod", "--image", "kit:1", "-p", "sleep", "soon"],
            {},
            "parameter 'sleep' expects float",
        ),
        (["--store", "s3://records/prod", "--image", "kit:1", "--incident", "../x"], {}, "incident"),
        (
            ["--store", "s3://records/prod", "--image", "kit:1", "--job-namespace", "Not_A_Namespace"],
            {},
            "not a valid namespace",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(env, args, extra_env, said):
    done = run({**env, **extra_env}, "--on", "kubernetes", *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runbook: ") and said in lines[0], done.stderr
    assert done.stdout == ""


def test_job_options_without_on_kubernetes_are_refused(env):
    done = run(env, "--image", "kit:1")
    assert done.returncode == 2
    assert "are for --on kubernetes" in done.stderr


def test_a_parameter_that_looks_like_a_credential_never_reaches_a_job(env, tmp_path):
    book = dict(BOOKS["hello_job"])
    cells = [dict(c) for c in book["cells"]]
    cells[0] = {**cells[0], "source": "dry_run = True\nsleep = 0.0\nfail = False\napi_token = ''\n"}
    (tmp_path / "books" / "hello_job.ipynb").write_text(json.dumps({**book, "cells": cells}))
    done = run(
        env,
        "--on",
        "kubernetes",
        "--store",
        "s3://records/prod",
        "--image",
        "kit:1",
        "-p",
        "api_token",
        "ghp_" + "a1B2" * 9,
    )
    assert done.returncode == 2
    assert "looks like a credential" in done.stderr and "a1B2a1B2" not in done.stderr
