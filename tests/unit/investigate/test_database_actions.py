"""The database action menu: bad names fail before any connection; `status` changes nothing."""

from __future__ import annotations

import pytest

from runbook_kit import ParameterError, apply
from runbook_kit.investigate import plan_database_action


def test_an_unknown_action_lists_the_known_ones():
    with pytest.raises(ParameterError, match="action must be one of status, cancel_long_queries"):
        plan_database_action(action="vacuum_everything")


def test_status_is_skipped_and_touches_nothing():
    plan = plan_database_action(action="status", db_instance_id="prod-db")
    assert plan.nothing_to_do and apply(plan, dry_run=False).outcome == "skipped"
