"""The lexical layer of the Logs Insights engine: tokens, literals and `filter` expressions.

Kept apart from the commands (insights.py) because expressions are the part with real grammar
(precedence of not/and/or, `like`, `in [...]`, comparisons that are numeric when both sides are
numbers and textual otherwise, as in the real service).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["QueryError", "Record", "compile_filter", "number", "regex", "split_pipes", "tokens", "unquote"]


class QueryError(ValueError):
    """A query the engine cannot parse (the API answers MalformedQueryException)."""


Record = dict[str, Any]


# --- tokenizing ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<regex>/(?:\\.|[^/\\])*/i?)
      | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
      | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
      | (?P<op><=|>=|!=|=~|==|[=<>(),\[\]*])
      | (?P<word>[@\w.$-]+)
    )""",
    re.VERBOSE,
)


def tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"unexpected character at {pos}: {text[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def split_pipes(query: str) -> list[str]:
    """Split on `|` outside strings and regex literals."""
    parts, buf, quote = [], [], ""
    for i, ch in enumerate(query):
        if quote:
            buf.append(ch)
            if ch == quote and query[i - 1] != "\\":
                quote = ""
            continue
        if ch in "\"'`":
            quote = ch
        elif ch == "/" and _regex_may_start(buf):
            quote = "/"
        if ch == "|":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return [p.strip() for p in parts if p.strip()]


def _regex_may_start(buf: list[str]) -> bool:
    before = "".join(buf).rstrip()
    return before.endswith(("like", "=~", "(", ",", "parse", "@message", "and", "or", "not")) or (
        before.split(" ")[0] == "parse" and len(before.split()) == 2
    )


def unquote(token: str) -> str:
    body = token[1:-1]
    return body if token[0] == "`" else re.sub(r"\\(.)", r"\1", body)


def regex(token: str) -> re.Pattern[str]:
    flags = re.IGNORECASE if token.endswith("i") and not token.endswith("/") else 0
    body = token[1 : token.rindex("/")]
    body = re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", body)  # Insights uses (?<name>...) like PCRE
    try:
        return re.compile(body, flags)
    except re.error as exc:
        raise QueryError(f"bad regex {token}: {exc}") from None


# --- values --------------------------------------------------------------------------------------


def number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


# --- filter expressions --------------------------------------------------------------------------


class _Expr:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def word(self, *words: str) -> bool:
        kind, text = self.peek()
        if kind == "word" and text.lower() in words:
            self.i += 1
            return True
        return False

    def parse(self) -> Callable[[Record], bool]:
        pred = self.disjunction()
        if self.peek()[0] != "end":
            raise QueryError(f"unexpected {self.peek()[1]!r} in filter")
        return pred

    def disjunction(self) -> Callable[[Record], bool]:
        parts = [self.conjunction()]
        while self.word("or"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def conjunction(self) -> Callable[[Record], bool]:
        parts = [self.negation()]
        while self.word("and"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def negation(self) -> Callable[[Record], bool]:
        if self.word("not"):
            inner = self.negation()
            return lambda r: not inner(r)
        if self.peek() == ("op", "("):
            self.take()
            inner = self.disjunction()
            if self.take() != ("op", ")"):
                raise QueryError("missing ) in filter")
            return inner
        return self.comparison()

    def operand(self) -> Callable[[Record], Any]:
        kind, text = self.take()
        if kind == "string":
            value = unquote(text)
            return lambda r: value
        if kind == "number":
            number = float(text)
            return lambda r: number
        if kind == "word":
            if self.peek() == ("op", "("):  # functions: strlen, tolower, toupper, isblank, ispresent
                self.take()
                arg = self.operand()
                if self.take() != ("op", ")"):
                    raise QueryError(f"missing ) after {text}(")
                fn = {
                    "strlen": lambda v: len(str(v or "")),
                    "tolower": lambda v: str(v or "").lower(),
                    "toupper": lambda v: str(v or "").upper(),
                    "ispresent": lambda v: v is not None,
                    "isblank": lambda v: v is None or str(v).strip() == "",
                    "isempty": lambda v: v is None or str(v) == "",
                }.get(text.lower())
                if fn is None:
                    raise QueryError(f"unsupported function {text}()")
                return lambda r: fn(arg(r))
            name = text
            return lambda r: r.get(name)
        raise QueryError(f"expected a field or value, got {text!r}")

    def comparison(self) -> Callable[[Record], bool]:
        left = self.operand()
        negate = self.word("not")
        kind, text = self.peek()
        if (kind == "word" and text.lower() == "like") or (kind, text) == ("op", "=~"):
            self.take()
            rkind, rtext = self.take()
            if rkind == "regex":
                pattern = regex(rtext)

                def matches(value: str) -> bool:
                    return bool(pattern.search(value))
            elif rkind == "string":
                needle = unquote(rtext)

                def matches(value: str) -> bool:
                    return needle in value
            else:
                raise QueryError("like expects /regex/ or a string")

            def test(r: Record) -> bool:
                value = left(r)
                return value is not None and matches(str(value))

            return (lambda r: not test(r)) if negate else test
        if kind == "word" and text.lower() == "in":
            self.take()
            if self.take() != ("op", "["):
                raise QueryError("in expects [values]")
            values: list[Any] = []
            while self.peek() != ("op", "]"):
                vkind, vtext = self.take()
                if vkind == "op" and vtext == ",":
                    continue
                values.append(
                    unquote(vtext) if vkind == "string" else float(vtext) if vkind == "number" else vtext
                )
                if vkind == "end":
                    raise QueryError("unterminated [ in filter")
            self.take()
            texts = {str(v) for v in values}
            numbers = {v for v in values if isinstance(v, float)}

            def member(r: Record) -> bool:
                value = left(r)
                return value is not None and (str(value) in texts or number(value) in numbers)

            return (lambda r: not member(r)) if negate else member
        if negate:
            raise QueryError("not must precede like or in here")
        if kind == "op" and text in ("=", "==", "!=", "<", ">", "<=", ">="):
            self.take()
            right = self.operand()
            return _compare(text, left, right)
        return lambda r: bool(left(r))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _compare(
    op: str, left: Callable[[Record], Any], right: Callable[[Record], Any]
) -> Callable[[Record], bool]:
    fn = _COMPARE[op]

    def test(r: Record) -> bool:
        a, b = left(r), right(r)
        if a is None or b is None:
            return op == "!=" and (a is None) != (b is None)
        na, nb = number(a), number(b)
        if na is not None and nb is not None:
            return fn(na, nb)
        return fn(str(a), str(b))

    return test


def compile_filter(text: str) -> Callable[[Record], bool]:
    """A predicate over records for the expression after `filter`."""
    return _Expr(tokens(text)).parse()
