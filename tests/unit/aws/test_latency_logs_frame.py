"""Logs Insights rows (lists of field/value strings) become typed frames."""

from __future__ import annotations

import pandas as pd

from runbook_kit.aws.logs import _frame


def test_times_and_numbers_are_typed_and_ptr_is_dropped():
    rows = [
        [
            {"field": "bin", "value": "2026-11-29 03:20:00.000"},
            {"field": "errors", "value": "31"},
            {"field": "@ptr", "value": "CmAKJwoj"},
        ],
        [{"field": "bin", "value": "2026-11-29 03:25:00.000"}, {"field": "errors", "value": "40"}],
    ]
    frame = _frame(rows)
    assert list(frame.columns) == ["bin", "errors"]
    assert frame["bin"].iloc[0] == pd.Timestamp("2026-11-29T03:20:00Z")
    assert frame["errors"].tolist() == [31, 40]


def test_text_that_only_starts_with_a_number_stays_text():
    frame = _frame([[{"field": "error", "value": "503 from upstream"}], [{"field": "error", "value": "42"}]])
    assert frame["error"].tolist() == ["503 from upstream", "42"]


def test_no_rows_is_an_empty_frame():
    assert _frame([]).empty
