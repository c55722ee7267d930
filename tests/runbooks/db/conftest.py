"""Fixtures for the database runbooks: the sandbox with its `connections` scenario."""

from __future__ import annotations

import pytest


@pytest.fixture
def db_sandbox(aws_pg_sandbox):
    """The shared (read-only) sandbox with the AWS and PostgreSQL parts, all scenarios seeded."""
    return aws_pg_sandbox


@pytest.fixture
def fresh_db(fresh_sandbox):
    """A sandbox of its own (AWS + PostgreSQL, `connections` scenario) for tests that change it."""
    return fresh_sandbox("connections", parts=("aws", "postgres"))
