"""A CloudWatch Logs Insights query engine for a subset of the language, over plain records.

moto accepts `StartQuery` but ignores most of the query (its filter is silently dropped), so a runbook
that asks for `filter @message like /ERROR/` would see INFO lines in the sandbox and pass for the wrong
reason. This module evaluates the commands runbooks use, with Insights' semantics:

    fields a, b            keep fields (also `expr as alias` for plain field copies)
    filter EXPR            like /re/ | like "substr" | =~ /re/ | = != < > <= >= | in [..] | and/or/not
    parse FIELD "glob * pattern" as a, b      and   parse FIELD /(?<name>re)/
    stats count(*) count(f) avg sum min max pct(f, 99) [as alias], ... [by bin(5m) [as alias], f]
    sort f [asc|desc], ...  limit n   display a, b

Records are dicts with `@timestamp` (epoch ms), `@message`, `@logStream`, `@log` and `@ptr`; JSON
messages also expose their top-level keys, as in the real service. Results are lists of
`{"field", "value"}` with string values, the wire shape of `GetQueryResults`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from runbook_sandbox.aws.insights_syntax import (
    QueryError,
    Record,
    compile_filter,
    number,
    regex,
    split_pipes,
    tokens,
    unquote,
)

__all__ = ["Query", "QueryError", "format_timestamp", "parse_query", "percentile", "run_query"]

DEFAULT_LIMIT = 10000


@dataclass
class Query:
    stages: list[Callable[[list[Record]], list[Record]]] = field(default_factory=list)
    output_fields: list[str] | None = None
    limit: int = DEFAULT_LIMIT
    time_fields: set[str] = field(default_factory=lambda: {"@timestamp", "@ingestionTime"})
    stats_at: int | None = None  # index of the stats stage: records matched are counted before it


def format_timestamp(ms: float) -> str:
    """Insights' wire format for timestamps: `2026-11-29 04:12:40.000`."""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{int(ms) % 1000:03d}"


def _render(name: str, value: Any, time_fields: set[str]) -> str:
    if name in time_fields and isinstance(value, int | float):
        return format_timestamp(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


# --- commands ------------------------------------------------------------------------------------


def _names(toks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`a, b as c, d` -> [(source, alias)]."""
    out: list[tuple[str, str]] = []
    items = _comma_split(toks)
    for item in items:
        if len(item) == 3 and item[1][1].lower() == "as":
            out.append((item[0][1], item[2][1]))
        elif len(item) == 1:
            out.append((item[0][1], item[0][1]))
        else:
            raise QueryError(f"cannot read field list near {' '.join(t for _, t in item)!r}")
    return out


def _comma_split(toks: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    items: list[list[tuple[str, str]]] = [[]]
    depth = 0
    for tok in toks:
        if tok == ("op", "("):
            depth += 1
        elif tok == ("op", ")"):
            depth -= 1
        if tok == ("op", ",") and depth == 0:
            items.append([])
        else:
            items[-1].append(tok)
    return [item for item in items if item]


def _parse_command(query: Query, command: str) -> None:
    keyword, _, rest = command.partition(" ")
    keyword = keyword.lower()
    rest = rest.strip()
    if keyword == "fields":
        pairs = _names(tokens(rest))
        query.stages.append(lambda rows: [{**r, **{a: r.get(s) for s, a in pairs if s != a}} for r in rows])
        known = query.output_fields or []
        query.output_fields = known + [a for _, a in pairs if a not in known]
    elif keyword == "display":
        query.output_fields = [a for _, a in _names(tokens(rest))]
    elif keyword == "filter":
        predicate = compile_filter(rest)
        query.stages.append(lambda rows: [r for r in rows if predicate(r)])
    elif keyword == "parse":
        query.stages.append(_parse_stage(rest))
    elif keyword == "stats":
        stage, names, bins = _stats_stage(rest)
        query.time_fields |= bins
        query.stats_at = len(query.stages)
        query.stages.append(stage)
        query.output_fields = names
    elif keyword == "sort":
        query.stages.append(_sort_stage(rest))
    elif keyword == "limit":
        try:
            query.limit = min(int(rest), DEFAULT_LIMIT)
        except ValueError:
            raise QueryError(f"limit expects a number, not {rest!r}") from None
    elif keyword == "dedup":
        keys = [s for s, _ in _names(tokens(rest))]

        def dedup(rows: list[Record]) -> list[Record]:
            seen: set[tuple[Any, ...]] = set()
            out = []
            for r in rows:
                key = tuple(r.get(k) for k in keys)
                if key not in seen:
                    seen.add(key)
                    out.append(r)
            return out

        query.stages.append(dedup)
    else:
        raise QueryError(f"unsupported command {keyword!r}")


def _parse_stage(rest: str) -> Callable[[list[Record]], list[Record]]:
    toks = tokens(rest)
    source = "@message"
    if toks and toks[0][0] == "word":
        source = toks.pop(0)[1]
    if not toks:
        raise QueryError("parse expects a pattern")
    kind, text = toks.pop(0)
    if kind == "regex":
        pattern = regex(text)
        names = list(pattern.groupindex)
    elif kind == "string":
        if not toks or toks[0][1].lower() != "as":
            raise QueryError('parse "glob" needs `as name, ...`')
        names = [s for s, _ in _names(toks[1:])]
        glob = unquote(text)
        parts = [re.escape(p) for p in glob.split("*")]
        if len(parts) - 1 != len(names):
            raise QueryError(f"parse: {len(parts) - 1} wildcards but {len(names)} names")
        pairs = enumerate(zip(names, parts[1:], strict=True))
        captures = [f"(?P<{_group(n, i)}>.*?)" + p for i, (n, p) in pairs]
        # a trailing * takes the rest of the line, as in Insights
        pattern = re.compile(parts[0] + "".join(captures) + ("$" if glob.endswith("*") else ""), re.DOTALL)
    else:
        raise QueryError("parse expects a glob string or /regex/")
    groups = list(pattern.groupindex)

    def stage(rows: list[Record]) -> list[Record]:
        out = []
        for r in rows:
            m = pattern.search(str(r.get(source) or ""))
            extracted = {n: m.group(g) for n, g in zip(names, groups, strict=True)} if m else {}
            out.append({**r, **extracted})
        return out

    return stage


def _group(name: str, index: int) -> str:
    return re.sub(r"\W", "_", name) + f"_{index}"


_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _stats_stage(rest: str) -> tuple[Callable[[list[Record]], list[Record]], list[str], set[str]]:
    """The stats stage, its output field names, and which of them are time bins."""
    by_at = re.search(r"\s+by\s+", rest, re.IGNORECASE)
    aggs_text, by_text = (rest[: by_at.start()], rest[by_at.end() :]) if by_at else (rest, "")
    aggregates: list[tuple[str, str, str, float]] = []  # (alias, function, field, percentile)
    for item in _comma_split(tokens(aggs_text)):
        texts = [t for _, t in item]
        alias = texts[-1] if len(texts) >= 3 and texts[-2].lower() == "as" else ""
        body = texts[:-2] if alias else texts
        if len(body) < 3 or body[1] != "(" or body[-1] != ")":
            raise QueryError(f"stats expects fn(field), got {' '.join(texts)!r}")
        fn, args = body[0].lower(), [t for t in body[2:-1] if t != ","]
        if fn not in ("count", "avg", "sum", "min", "max", "pct", "count_distinct"):
            raise QueryError(f"unsupported stats function {fn}()")
        pct = float(args[1]) if fn == "pct" and len(args) == 2 else 0.0
        if fn == "pct" and len(args) != 2:
            raise QueryError("pct expects (field, percentile)")
        name = alias or f"{body[0]}({', '.join(args)})"
        aggregates.append((name, fn, args[0] if args else "*", pct))
    groups: list[tuple[str, Callable[[Record], Any]]] = []
    bins: set[str] = set()
    for item in _comma_split(tokens(by_text)):
        texts = [t for _, t in item]
        alias = texts[-1] if len(texts) >= 3 and texts[-2].lower() == "as" else ""
        body = texts[:-2] if alias else texts
        if body[0].lower() == "bin" and len(body) == 4:
            m = _DURATION.match(body[2])
            if not m:
                raise QueryError(f"bin expects a duration like 5m, not {body[2]!r}")
            width = int(m.group(1)) * _UNITS[m.group(2)]
            bins.add(alias or f"bin({body[2]})")
            groups.append((alias or f"bin({body[2]})", _binner(width)))
        elif len(body) == 1:
            groups.append((alias or body[0], _getter(body[0])))
        else:
            raise QueryError(f"cannot group by {' '.join(texts)!r}")

    def stage(rows: list[Record]) -> list[Record]:
        buckets: dict[tuple[Any, ...], list[Record]] = {}
        for r in rows:
            buckets.setdefault(tuple(g(r) for _, g in groups), []).append(r)
        out = []
        for key, members in buckets.items():
            row: Record = {name: value for (name, _), value in zip(groups, key, strict=True)}
            for name, fn, fld, pct in aggregates:
                row[name] = _aggregate(fn, fld, pct, members)
            out.append(row)
        if groups and groups[0][0] in bins:
            out.sort(key=lambda row: row[groups[0][0]] or 0)
        return out

    names = [n for n, _ in groups] + [a[0] for a in aggregates]
    return stage, names, bins


def _binner(width: int) -> Callable[[Record], Any]:
    def key(r: Record) -> Any:
        return None if r.get("@timestamp") is None else int(r["@timestamp"]) // width * width

    return key


def _getter(name: str) -> Callable[[Record], Any]:
    return lambda r: r.get(name)


def _numeric_key(name: str) -> Callable[[Record], float]:
    return lambda r: number(r[name]) or 0.0


def _text_key(name: str) -> Callable[[Record], str]:
    return lambda r: str(r[name])


def _aggregate(fn: str, fld: str, pct: float, rows: list[Record]) -> Any:
    if fn == "count":
        return len(rows) if fld == "*" else sum(1 for r in rows if r.get(fld) is not None)
    if fn == "count_distinct":
        return len({str(r.get(fld)) for r in rows if r.get(fld) is not None})
    numbers = sorted(n for n in (number(r.get(fld)) for r in rows) if n is not None)
    if not numbers:
        return None
    if fn == "avg":
        return sum(numbers) / len(numbers)
    if fn == "sum":
        return sum(numbers)
    if fn == "min":
        return numbers[0]
    if fn == "max":
        return numbers[-1]
    return percentile(numbers, pct)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile (the value below which `pct`% of the samples fall)."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _sort_stage(rest: str) -> Callable[[list[Record]], list[Record]]:
    keys: list[tuple[str, bool]] = []
    for item in _comma_split(tokens(rest)):
        texts = [t for _, t in item]
        descending = len(texts) > 1 and texts[1].lower() == "desc"
        keys.append((texts[0], descending))

    def stage(rows: list[Record]) -> list[Record]:
        for name, descending in reversed(keys):
            present = [r for r in rows if r.get(name) is not None]
            missing = [r for r in rows if r.get(name) is None]
            numeric = all(number(r[name]) is not None for r in present)
            if numeric:
                present.sort(key=_numeric_key(name), reverse=descending)
            else:
                present.sort(key=_text_key(name), reverse=descending)
            rows = present + missing
        return rows

    return stage


# --- entry points --------------------------------------------------------------------------------


def parse_query(text: str) -> Query:
    """Compile a query string; raises QueryError for what the engine does not understand."""
    query = Query()
    for command in split_pipes(text):
        _parse_command(query, command)
    return query


def _expand(record: Record) -> Record:
    message = record.get("@message")
    if isinstance(message, str) and message.startswith("{"):
        try:
            data = json.loads(message)
        except ValueError:
            return record
        if isinstance(data, dict):
            return {**{k: v for k, v in data.items() if not isinstance(v, dict | list)}, **record}
    return record


def run_query(text: str, records: Iterable[Record]) -> tuple[list[list[dict[str, str]]], dict[str, float]]:
    """Evaluate a query: (results in GetQueryResults' shape, statistics)."""
    query = parse_query(text)
    rows = [_expand(r) for r in records]
    scanned = len(rows)
    bytes_scanned = sum(len(str(r.get("@message", "")).encode()) for r in rows)
    is_stats = query.stats_at is not None
    matched = scanned
    for index, stage in enumerate(query.stages):
        if index == query.stats_at:
            matched = len(rows)
        rows = stage(rows)
    if not is_stats:
        matched = len(rows)
    rows = rows[: query.limit]
    fields = query.output_fields or ["@timestamp", "@message"]
    results = []
    for r in rows:
        present = [f for f in fields if r.get(f) is not None]
        line = [{"field": f, "value": _render(f, r[f], query.time_fields)} for f in present]
        if not is_stats and r.get("@ptr") is not None:
            line.append({"field": "@ptr", "value": str(r["@ptr"])})
        results.append(line)
    stats = {
        "recordsMatched": float(matched),
        "recordsScanned": float(scanned),
        "bytesScanned": float(bytes_scanned),
    }
    return results, stats
