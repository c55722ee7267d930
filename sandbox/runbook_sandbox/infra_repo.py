"""A git repository of infrastructure commits (Terraform), dated relative to the anchor.

`what_changed` reads configured infrastructure repositories with `git log --since`; the sandbox
makes one so that the timeline has commits to show: authors, messages and the files they touched,
none of them the incident's cause. Real `git` with `GIT_AUTHOR_DATE`/`GIT_COMMITTER_DATE`, so the
history is what `git log` reads in any repository. Skipped (returns None) when git is not installed.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["COMMITS", "create"]

# (minutes before the anchor, author, message, {file: content})
COMMITS = (
    (
        60 * 24 * 6,
        "Dana Ops <dana@example.com>",
        "network: add private subnets for the storefront",
        {"network/subnets.tf": 'resource "aws_subnet" "private_a" {}\n'},
    ),
    (
        210,
        "Ravi Platform <ravi@example.com>",
        "storefront: raise cache node size to cache.r6g.large",
        {"storefront/cache.tf": 'resource "aws_elasticache_cluster" "cache" { node_type = "r6g" }\n'},
    ),
    (
        95,
        "Ravi Platform <ravi@example.com>",
        "monitoring: p99 alarm for checkout at 1 s",
        {"storefront/alarms.tf": 'resource "aws_cloudwatch_metric_alarm" "checkout_p99" { threshold = 1 }\n'},
    ),
)


def create(path: Path, anchor: dt.datetime) -> Path | None:
    git = shutil.which("git")
    if git is None:
        return None
    path.mkdir(parents=True, exist_ok=True)
    base = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(path)}

    def run(*args: str, env: dict[str, str] | None = None) -> None:
        subprocess.run(
            [git, "-C", str(path), *args], check=True, capture_output=True, env=env or base, timeout=30
        )

    run("init", "-q", "-b", "main")
    for ago, author, message, files in COMMITS:
        for name, content in files.items():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            run("add", name)
        when = (anchor - dt.timedelta(minutes=ago)).isoformat()
        who, email = author[: author.index(" <")], author[author.index("<") + 1 : -1]
        env = {
            **base,
            "GIT_AUTHOR_DATE": when,
            "GIT_COMMITTER_DATE": when,
            "GIT_AUTHOR_NAME": who,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": who,
            "GIT_COMMITTER_EMAIL": email,
        }
        run("commit", "-q", "-m", message, env=env)
    return path
