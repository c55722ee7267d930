"""Scrub secrets from anything that may reach an incident record.

The executed notebook is attached to a postmortem and read by many people, so every string that
goes into it — cell outputs, parameters, notebook metadata, incident.json, the HTML export, error
messages — is passed through a `Redactor` first. Three complementary nets:

* **Shapes**: things that are secrets whatever surrounds them — AWS access key ids, secret keys and
  session tokens, GitHub/Slack/Stripe/GitLab/Google tokens, JWTs, PEM/PGP private key blocks (also
  when truncated, also base64-encoded as in a Kubernetes `tls.key`).
* **Positions**: values that are secrets because of where they stand — after a secret-named key
  (`password=…`, `"api_key": "…"`, `--token …`, libpq `password='quoted value'`), in the password
  slot of a URL, in `Authorization`/`Cookie`/`X-Api-Key` headers, under `data`/`stringData` of a
  Kubernetes Secret (dict, JSON, pprint, client `print()` and YAML forms), and in the columns of a
  table (pandas text or HTML, psql/markdown pipe tables) whose header names a secret.
* **Known values**: the values of environment variables and parameters with secret names.

Why it is built this way:

* **Mask values, not names.** A name's *last word* decides whether it names a secret
  (`is_secret_name`): `db_password`, `GITHUB_TOKEN`, `client_secret`, `api_key` do; `SecretName`,
  `secretKeyRef`, `tokenExpirationSeconds`, `NextToken`, `NoCredentialsError`, `PASSWORD_FILE` and a
  bare `key`/`Key` (S3 object keys, toleration keys) do not. `key` counts only after a qualifier
  (`api`, `access`, `secret`, `private`, `signing`, `client`, `tls`, …); `*_key_id` only as
  `access_key_id` (half of an AWS credential pair). Trailing `data`/`value`/`string`/digits are
  ignored (`client-key-data` and `SecretString` name secrets).
* **Short or common known values are not hunted in free text.** The sandbox sets
  `AWS_SECRET_ACCESS_KEY=testing`; replacing every "testing" mangles the record and protects
  nothing. A known value shorter than 8 characters, or in `_COMMON_VALUES`, is masked only where it
  stands in a value position (after a secret-named key, where even a 3-character value is masked if
  it is known); a URL password slot is masked whatever its length. Longer known values are masked
  everywhere, also JSON- and URL-escaped.
* **Literals are not secrets.** `api_key = None`, `password: str = ""`, `tokens: list = []`,
  `automountServiceAccountToken: false` keep their text.
* **One view, one set of spans.** Detectors never edit text; they report spans in a *view* of the
  string in which ANSI escape codes (IPython's coloured tracebacks) are invisible, HTML entities
  (`&quot;`, `&#x27;`, `&amp;`) and `\\n`/`\\t` escapes (a repr, JSON text) are decoded, and in
  HTML-looking strings tags are invisible too. The spans are mapped back, merged, and each is
  replaced by `MASK` followed by the escape codes/tags it covered — colours stay balanced, markup
  stays well-formed, and the visible text is what was matched. Matching through ANSI codes, rather
  than stripping them from tracebacks, keeps the record looking like what the responder saw.
* **Idempotent by construction.** A mask changes its surroundings (a neighbour now stands alone, a
  bracket inside a masked value is gone), so a text that was changed is read again until nothing
  changes; a table row that already holds a mask is left as it is (the mask shifted its columns).
* **Linear time.** Every pattern that repeats a character class starts only at the beginning of a
  run of that class (a look-behind) and uses possessive quantifiers, so no run is scanned from many
  starting points; patterns start with a literal where they can (`re` then jumps between its
  occurrences), and names are found from a stem search in the lower-cased text; structural passes
  (Secret blocks, tables) walk the text once. The previous `[A-Za-z0-9_.-]*(secret|…)[A-Za-z0-9_.-]*`
  pattern was quadratic: 10,000 × `a-` took 50 s.
* **A cell's streams are redacted as one text.** stdout arrives in chunks, interleaved with stderr;
  a secret can be split between two outputs. `Redactor.outputs` joins each stream, redacts, and maps
  the masks back onto the pieces (`value()` does this for every code cell).

Redaction is idempotent and never raises (if a detector fails, the whole string is masked: a record
with a false positive is better than a record with a leaked key). Raster images (image/png, jpeg,
gif, …) are base64 and left alone; image/svg+xml is text and is redacted.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import html
import json
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["MASK", "Redactor", "is_secret_name", "redact", "redact_text"]

MASK = "***REDACTED***"

# --- names -------------------------------------------------------------------------------------

# Names that contain KEY but hold no secret (kept from the first version; the word rules cover them).
_NOT_SECRET_NAMES = {"KEYMAP", "KEYTIMEOUT"}
_NAME_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SECRET_WORDS = frozenset({
    "secret", "secrets", "token", "tokens", "password", "passwords", "passwd", "pass", "passphrase",
    "credential", "credentials", "creds", "cookie", "cookies", "authorization",
})
# A last word ending like this names a secret too (PGPASSWORD, authtoken, clientsecret, apikey).
_SECRET_SUFFIXES = ("password", "passwords", "passwd", "secret", "secrets", "token", "tokens",
                    "credential", "credentials", "passphrase")
# ... a key is a secret only with one of these before it (api_key, AccessKey, tls.key, privatekey).
_KEY_QUALIFIERS = frozenset({
    "api", "access", "secret", "private", "signing", "sign", "encryption", "encrypt", "decryption",
    "master", "client", "auth", "app", "application", "account", "service", "session", "ssh", "gpg",
    "pgp", "hmac", "shared", "root", "storage", "subscription", "webhook", "consumer", "deploy", "tls",
    "ssl", "rsa", "dsa", "ecdsa", "ed25519", "jwt", "sas", "admin", "license", "crypt", "cipher",
})
# ... and a token is not one after these (NextToken, page_token, max_tokens, ContinuationToken).
_NOT_SECRET_TOKEN_PREFIXES = frozenset({
    "next", "page", "continuation", "continue", "pagination", "resume", "sync", "max", "min", "num",
    "total", "prev", "previous", "start", "end", "idempotency", "marker",
})
# Trailing words that describe the encoding of the value, not what it is (client-key-data, SecretString).
_TRAILING_QUALIFIERS = frozenset({
    "data", "value", "values", "string", "str", "b64", "base64", "binary", "bytes", "raw", "plain",
    "plaintext", "text", "hex", "enc", "encoded",
})


@functools.lru_cache(maxsize=8192)
def _is_secret_name(name: str) -> bool:
    if name.upper() in _NOT_SECRET_NAMES:
        return False
    words = [w.lower() for w in _NAME_WORD.findall(name)]
    while len(words) > 1 and (words[-1] in _TRAILING_QUALIFIERS or words[-1].isdigit()):
        words.pop()
    if not words:
        return False
    last = words[-1]
    before = words[-2] if len(words) > 1 else ""
    if last in _SECRET_WORDS:
        return not (last in ("token", "tokens") and before in _NOT_SECRET_TOKEN_PREFIXES)
    if last == "pwd":  # MYSQL_PWD, but not PWD (the working directory)
        return len(words) > 1
    for suffix in _SECRET_SUFFIXES:
        if last.endswith(suffix):
            return last[: -len(suffix)] not in _NOT_SECRET_TOKEN_PREFIXES
    for suffix in ("keys", "key"):
        if last == suffix:
            return before in _KEY_QUALIFIERS
        if last.endswith(suffix):
            return last[: -len(suffix)] in _KEY_QUALIFIERS
    if last == "id" and words[-3:-1] == ["access", "key"]:  # AWS_ACCESS_KEY_ID
        return True
    return last in ("accesskeyid", "apikeyid")


def is_secret_name(name: str) -> bool:
    """Whether a variable, parameter, key, header or column name says its value is a secret.

    The last word decides (words split at `_ - .`, spaces and camelCase; a trailing `data`, `value`,
    `string` or number is skipped): `AWS_SECRET_ACCESS_KEY`, `PGPASSWORD`, `GITHUB_TOKEN`,
    `client_secret`, `x-api-key`, `tls.key`, `SecretString` are secret; `SecretName`, `secret_ref`,
    `token_expiration_seconds`, `NextToken`, `key`, `KMS_KEY_ID`, `PASSWORD_FILE` are not.
    """
    return isinstance(name, str) and _is_secret_name(name)


# --- values that are not secrets ---------------------------------------------------------------

_LITERALS = frozenset({
    "none", "null", "nil", "true", "false", "undefined", "nan", "<na>", "nat", "str", "bytes", "int",
    "float", "bool", "list", "dict", "tuple", "set", "any", "object", "optional", "secretstr", "~", "-",
    "<none>", "[]", "{}", "()", "''", '""', "redacted", "<redacted>", "hidden", "<hidden>", "n/a",
    "<unset>", "unset", "<secret>", "...", "…",
})
# Known values that are too common to be hunted in free text (still masked in value positions).
_COMMON_VALUES = frozenset({
    "testing", "test", "admin", "password", "changeme", "secret", "default", "example", "postgres",
    "root", "guest", "user", "dummy", "sample", "localhost", "minioadmin", "letmein", "welcome",
    "foobar", "12345678", "123456789", "1234567890", "qwerty123", "password1", "administrator",
    "development", "production", "staging", "fake", "mock", "none", "null", "true", "false",
})
_MIN_FREE_TEXT_VALUE = 8
# An unquoted value after a secret-named key shorter than this is masked only if it is a known value
# ("password: no" is not a secret; PGPASSWORD=pw1 is, when pw1 is PGPASSWORD's value).
_MIN_UNQUOTED_VALUE = 4
_PLACEHOLDER = re.compile(  # ****, xxxx, ${VAR}, $(cmd), {{ template }}, $VAR, <your-token>
    r"\*+|[xX]{3,}|\$\{[^}]*\}|\$\([^)]*\)|\{\{.*\}\}|\$[A-Z_][A-Z0-9_]*|<[A-Za-z_ -]+>")


def _is_placeholder(value: str) -> bool:
    return (not value or value.lower() in _LITERALS or value.startswith(MASK)
            or _PLACEHOLDER.fullmatch(value) is not None)


# --- the view: ANSI codes and HTML tags invisible, entities decoded ----------------------------

_ANSI = r"\x1b\[[0-?]*+[ -/]*+[@-~]|\x1b\][^\x07\x1b\n]*+(?:\x07|\x1b\\)|\x1b[@-Z\\-_]"
_ENTITY = r"&(?:\#[0-9]{1,7}|\#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
_TAG = r"<[A-Za-z/!?][^<>]*+>"
# \n \r \t inside a repr or JSON text, read as the character (not after another backslash; the
# look-behind comes after the literal so that `re` can skip to the next backslash).
_ESCAPE = r"\\[nrt](?<!\\..)"
_ESCAPED = {"\\n": "\n", "\\r": "\r", "\\t": "\t"}
# One pattern per kind, each starting with its own literal: `re` jumps between occurrences (an
# alternation of them would try every position).
_VIEW_TOKENS = [("\x1b", "ansi", re.compile(_ANSI)), ("&", "ent", re.compile(_ENTITY)),
                ("\\", "esc", re.compile(_ESCAPE))]
_VIEW_TAGS = ("<", "tag", re.compile(_TAG))
_INVISIBLE = re.compile(_ANSI)
_INVISIBLE_TAGS = re.compile(f"{_ANSI}|{_TAG}")
_HTMLISH = re.compile(r"</[A-Za-z]|<br\b", re.IGNORECASE)


class _View:
    """`clean` is the text as read — ANSI codes (and tags) removed, entities and \\n escapes decoded;
    `start()`/`end()` map a span of it back to the original string."""

    __slots__ = ("_lens", "_pos", "_shift", "clean")

    def __init__(self, text: str, *, tags: bool = False) -> None:
        self._pos: list[int] = []  # clean position of each token
        self._lens: list[int] = []  # 0 (invisible) or 1 (decoded to one character)
        self._shift: list[int] = []  # original - clean, after the token
        found: list[tuple[int, int, str]] = []
        for trigger, kind, pattern in [*_VIEW_TOKENS, _VIEW_TAGS] if tags else _VIEW_TOKENS:
            if trigger in text:
                found += [(m.start(), m.end(), kind) for m in pattern.finditer(text)]
        if not found:
            self.clean = text  # nothing to hide or decode: the common case
            return
        found.sort()
        parts: list[str] = []
        last = clean = 0
        for s, e, kind in found:
            if s < last:
                continue  # inside the previous token (an entity in a tag's attribute)
            if kind == "ent":
                ch = html.unescape(text[s:e])
                if len(ch) != 1:
                    continue  # an unknown or multi-character entity stays as it is
            elif kind == "esc":
                ch = _ESCAPED[text[s:e]]
            else:
                ch = ""
            parts.append(text[last:s])
            clean += s - last
            self._pos.append(clean)
            self._lens.append(len(ch))
            parts.append(ch)
            clean += len(ch)
            self._shift.append(e - clean)
            last = e
        parts.append(text[last:])
        self.clean = "".join(parts)

    @property
    def identity(self) -> bool:
        return not self._pos

    def start(self, p: int) -> int:
        """Original index of the character at clean index `p` (after invisible runs before it)."""
        k = bisect.bisect_right(self._pos, p) - 1
        if k < 0:
            return p
        if self._lens[k] and self._pos[k] == p:  # a decoded entity: its '&'
            return p + (self._shift[k - 1] if k else 0)
        return p + self._shift[k]

    def end(self, p: int) -> int:
        """Original index just after the character at clean index `p - 1`."""
        k = bisect.bisect_left(self._pos, p) - 1
        return p if k < 0 else p + self._shift[k]


# --- detectors: each reports (start, end) spans of the clean text ------------------------------

_Add = Callable[[int, int], None]

# Secrets whatever surrounds them. Each pattern starts with a literal (so `re` jumps from one
# occurrence of it to the next instead of trying every position), then a look-behind over that literal
# makes sure it starts a run; repeats are possessive: linear whatever the input.
_TOKEN_SHAPES = [
    re.compile(r"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)(?<![A-Za-z0-9]....)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    re.compile(r"gh[pousr]_(?<![A-Za-z0-9_]....)[A-Za-z0-9]{16,}+"),
    re.compile(r"github_pat_(?<![A-Za-z0-9_]...........)[A-Za-z0-9_]{20,}+"),
    re.compile(r"xox[abposre]-(?<![A-Za-z0-9_-].....)[A-Za-z0-9-]{8,}+"),
    re.compile(r"xapp-(?<![A-Za-z0-9_-].....)[A-Za-z0-9-]{8,}+"),
    re.compile(r"glpat-(?<![A-Za-z0-9_-]......)[A-Za-z0-9_-]{16,}+"),
    re.compile(r"AIza(?<![0-9A-Za-z_-]....)[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
    # JSON web tokens
    re.compile(r"eyJ(?<![A-Za-z0-9_-]...)[A-Za-z0-9_-]{8,}+\.eyJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{8,}+"),
    # AWS session tokens (STS): long base64 strings with the well-known prefixes
    re.compile(r"F[wQ]oGZXIvYXdz(?<![A-Za-z0-9/+].{12})[A-Za-z0-9/+]{20,}+=*+"),
    re.compile(r"IQoJb3JpZ2lu(?<![A-Za-z0-9/+].{12})[A-Za-z0-9/+]{20,}+=*+"),
    # AWS secret access keys: 40 characters of base64, mixed case and a digit or / +, standing alone
    re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=]))(?=[A-Za-z0-9/+=]{0,39}[A-Z])"
               r"(?=[A-Za-z0-9/+=]{0,39}[a-z])(?=[A-Za-z0-9/+=]{0,39}[0-9/+])[A-Za-z0-9/+=]{40}"),
]
# Stripe: matched from "k_live_" (a literal), the s/r before it checked by hand.
_STRIPE = re.compile(r"k_(?:live|test)_[A-Za-z0-9]{8,}+")
# Group 1 is the secret.
_GROUP_SHAPES = [
    # scheme://user:password@host (the password runs to the last @ before the path)
    re.compile(r"://[^\s:/@'\"<>]*+:([^\s'\"/<>]+)@"),
    re.compile(r"hooks\.slack\.com/services/([A-Za-z0-9/]{8,}+)"),
]
# A base64-encoded PEM block (kubeconfig client-key-data, a Secret's tls.key): decoded to check.
_B64_PEM = re.compile(r"LS0tLS1CRUdJTi(?<![A-Za-z0-9+/].{14})[A-Za-z0-9+/]{16,}+=*+")

_PEM_MARK = re.compile(r"-----(BEGIN|END) ([A-Z0-9]++(?: [A-Z0-9]++){0,7})-----")
_PEM_SEP = re.compile(r"(?:\r?\n|\\r\\n|\\n)|[ \t]++")
_PEM_LINE = re.compile(r"[ \t]*+(?:([A-Za-z0-9+/=]{4,}+(?:\.{2,3}|…)?)|[A-Za-z][A-Za-z0-9-]*+: [^\r\n\\]*+)"
                       r"(?=[ \t]*+(?:\r?\n|\\[rn]|['\"]|$))")
_PEM_BLANK = re.compile(r"[ \t]*+(?=\r?\n|\\[rn])")


def _find_shapes(t: str, add: _Add) -> None:
    for pattern in _TOKEN_SHAPES:
        for m in pattern.finditer(t):
            add(*m.span())
    for m in _STRIPE.finditer(t):
        s = m.start()
        if s and t[s - 1] in "sr" and not (s > 1 and (t[s - 2].isalnum() or t[s - 2] == "_")):
            add(s - 1, m.end())
    for pattern in _GROUP_SHAPES:
        for m in pattern.finditer(t):
            if not _is_placeholder(m.group(1)):
                add(*m.span(1))
    for m in _B64_PEM.finditer(t):
        head = m.group()[:64]
        try:
            decoded = base64.b64decode(head + "=" * (-len(head) % 4))
        except (binascii.Error, ValueError):
            continue
        if b"PRIVATE KEY" in decoded or b"SECRET KEY" in decoded:
            add(*m.span())


def _private_label(label: str) -> bool:
    return "PRIVATE KEY" in label or "SECRET KEY" in label


def _find_pem(t: str, add: _Add) -> None:
    """Private key blocks, to their END marker, or (truncated) to the end of their base64 lines."""
    if "-----BEGIN" not in t:
        return
    marks = list(_PEM_MARK.finditer(t))
    for i, m in enumerate(marks):
        if m.group(1) != "BEGIN" or not _private_label(m.group(2)):
            continue
        nxt = marks[i + 1] if i + 1 < len(marks) else None
        if nxt is not None and nxt.group(1) == "END":
            add(m.start(), nxt.end())
            continue
        pos = end = m.end()
        data = False  # armor headers and one blank line may come before the base64 lines, not after
        while True:
            sep = _PEM_SEP.match(t, pos)
            if sep is None:
                break
            spaced = sep.group()[0] in " \t"
            line = _PEM_LINE.match(t, sep.end())
            if line is not None and not (spaced and len(line.group().strip()) < 20):
                header = line.group(1) is None
                if header and data:
                    break
                data = data or not header
                pos = end = line.end()
                continue
            blank = None if spaced or data else _PEM_BLANK.match(t, sep.end())
            if blank is None:
                break
            pos = blank.end()
        add(m.start(), end)


# Named values: key=value, key: value, "key": "value", key='quoted value', --key value where the key
# names a secret; Authorization/Cookie/X-Api-Key headers; Bearer/Basic credentials. They are found
# from the stems below (searched in the lower-cased text: fast) and read forward from the name.
_STEM = re.compile(r"secret|token|pass|pwd|key|cred|cookie|auth|bearer|basic")
_STEM_ANY_CASE = re.compile(_STEM.pattern, re.IGNORECASE)
_NAME_AT = re.compile(r"[\w.\-]++")
_SEPARATOR = re.compile(r"(?:\\?[\"'])?[ \t]*+([:=])(?![:=])[ \t]*+")
_FLAG_GAP = re.compile(r"[ \t]++(?![-\s])")
_CREDENTIAL = re.compile(r"[ \t]++([A-Za-z0-9\-._~+/]{8,}+=*+)")
_ANNOTATION = re.compile(
    r"(?:Optional\[)?(?:str|bytes|int|float|bool|list|dict|tuple|set|Any|SecretStr|Path)"
    r"(?:\[[\w., |\[\]]*+\])?\]?(?:[ \t]*+\|[ \t]*+None)?[ \t]*+=(?![=])[ \t]*+"
)
_STR_PREFIX = re.compile(r"[bBrRuU]{1,2}(?=[\"'])")
_QUOTED = re.compile(
    r"""\\"([^"\\\n]*+)(?:\\")?|\\'([^'\\\n]*+)(?:\\')?|"((?:[^"\\\n]|\\.)*+)"?|'((?:[^'\\\n]|\\.)*+)'?"""
)
_UNQUOTED = re.compile(r"[^\s\"'`,;&<>(){}\[\]]++")
_FLAT = re.compile(r"\[[^\[\]{}]*+\]|\{[^\[\]{}]*+\}")
_ELEMENT = re.compile(
    r"""\\"([^"\\\n]*+)\\"|"((?:[^"\\\n]|\\.)*+)"|'((?:[^'\\\n]|\\.)*+)'|([^\s,'"\[\]{}:]++)"""
)
_KEY_FOLLOWS = re.compile(r"[ \t]*+:")
_HEADER_NAMES = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
                           "x-auth-token", "api-key", "x-amz-security-token"})
_HEADER_SEPARATOR = re.compile(r"(?:\\?[\"'])?[ \t]*+:(?![:=])[ \t]*+")
# Unquoted, a header value runs to the end of the line (or of the string it is quoted in).
_HEADER_VALUE = re.compile(r"(?:[^\r\n\\]|\\(?![rn]))*+")
_HEADER_VALUE_IN = {q: re.compile(r"(?:[^\r\n\\" + q + r"]|\\(?![rn" + q + r"]))*+") for q in "'\""}
_HEADER_SCHEME = re.compile(r"(?i)(?:bearer|basic|token|oauth|digest|negotiate|ntlm|aws4-hmac-sha256|apikey"
                            r"|sso-key)[ \t]++(?=\S)")
# After "name:", a short lower-case word followed by more words is prose, not a value.
_PROSE = re.compile(r"([a-z]{1,11}+)[ \t]++[a-z]")
_LOOKS_ENCODED = re.compile(r"[0-9\-._~+/=]|[a-z].*[A-Z]")


def _stems(t: str) -> list[int]:
    """Where a secret-ish stem occurs (the start of each name or word containing one is found from it)."""
    low = t.lower()
    pattern = _STEM if len(low) == len(t) else _STEM_ANY_CASE
    return [m.start() for m in pattern.finditer(low if pattern is _STEM else t)]


def _quoted_inner(m: re.Match[str]) -> tuple[int, int]:
    for g in (1, 2, 3, 4):
        if m.group(g) is not None:
            return m.span(g)
    return m.span()


def _mask_value_at(t: str, p: int, add: _Add, weak: frozenset[str]) -> int:
    """The value that starts at `p` stands after a secret-named key: mask it unless it is a literal.
    Returns where the value ends (the caller skips names found inside it: linear time)."""
    c = t[p:p + 1]
    if c in ("[", "{"):
        flat = _FLAT.match(t, p)
        if flat is None:
            return p
        for el in _ELEMENT.finditer(t, flat.start() + 1, flat.end() - 1):
            if _KEY_FOLLOWS.match(t, el.end()):
                continue  # a key of a mapping: names stay
            s, e = _quoted_inner(el)
            if not _is_placeholder(t[s:e]):
                add(s, e)
        return flat.end()
    prefix = _STR_PREFIX.match(t, p)
    if prefix is not None:
        p = prefix.end()
    q = _QUOTED.match(t, p)
    if q is not None:
        s, e = _quoted_inner(q)
        if not _is_placeholder(t[s:e]):
            add(s, e)
        return q.end()
    u = _UNQUOTED.match(t, p)
    if u is None:
        return p
    if t[u.end():u.end() + 1] in ("(", "["):  # a call or a subscript: code, not a value
        return p
    value = u.group()
    if not _is_placeholder(value) and (len(value) >= _MIN_UNQUOTED_VALUE or value in weak):
        add(*u.span())
    return u.end()


def _mask_header_at(t: str, name_start: int, p: int, add: _Add) -> int:
    """Authorization, Cookie, X-Api-Key …: the whole value (an auth scheme word stays readable)."""
    q = _QUOTED.match(t, p) if t[p:p + 1] in ("'", '"', "\\") else None
    if q is not None:
        s, e = _quoted_inner(q)
    else:
        v = _HEADER_VALUE_IN.get(t[name_start - 1:name_start], _HEADER_VALUE).match(t, p)
        s, e = p, (v.end() if v is not None else p)
    done = e
    scheme = _HEADER_SCHEME.match(t, s, e)
    if scheme is not None:
        s = scheme.end()
    while e > s and t[e - 1] in " \t":
        e -= 1
    if not _is_placeholder(t[s:e]):
        add(s, e)
    return done


def _find_named(t: str, stems: list[int], add: _Add, weak: frozenset[str]) -> None:
    name_end = done = 0
    for h in stems:
        if h < name_end or h < done:
            continue  # the same name again, or inside a value already read
        start = h
        while start > name_end and (t[start - 1].isalnum() or t[start - 1] in "_.-"):
            start -= 1
        name_match = _NAME_AT.match(t, start)
        if name_match is None:
            continue
        name, name_end = name_match.group(), name_match.end()
        lower = name.lower()
        if lower in ("bearer", "basic"):
            cred = _CREDENTIAL.match(t, name_end)
            # "Basic understanding" is prose: a credential has a digit, a symbol, or inner capitals
            if cred is not None and _LOOKS_ENCODED.search(cred.group(1)):
                add(*cred.span(1))
                done = cred.end()
            continue
        if lower in _HEADER_NAMES:
            sep = _HEADER_SEPARATOR.match(t, name_end)
            if sep is not None:
                done = _mask_header_at(t, start, sep.end(), add)
                continue
        if not _is_secret_name(name):
            continue
        sep = _SEPARATOR.match(t, name_end)
        if sep is not None:
            p = sep.end()
            if sep.group(1) == ":":
                annotation = _ANNOTATION.match(t, p)
                if annotation is not None:
                    p = annotation.end()
            prose = _PROSE.match(t, p) if sep.group(1) == ":" else None
            if prose is not None and prose.group(1) not in weak:
                done = prose.end(1)  # "Invalid token: signature verification failed" is a sentence
                continue
            done = _mask_value_at(t, p, add, weak)
        elif name.startswith("--"):
            gap = _FLAG_GAP.match(t, name_end)
            if gap is not None:
                done = _mask_value_at(t, gap.end(), add, weak)


# Kubernetes Secrets printed as text: every value under data/stringData of an object whose kind is
# Secret (or of any object inside a SecretList) — dict/JSON/pprint (`{'data': {...}, 'kind':
# 'Secret'}`), the client's print() form (`data={...} kind='Secret'`) and YAML (`kubectl get -o yaml`).
_KIND_SECRET = re.compile(r"""kind\\?["']?[ \t]*+[:=][ \t]*+\\?["']?Secret(?:List)?(?![\w-])""")
_DATA_KEYS = r"(?:data|stringData|string_data)"
_SECRET_BRACES = re.compile(
    r"(?P<data>(?:\\?[\"']" + _DATA_KEYS + r"\\?[\"'][ \t]*+:|(?<![\w.\-])" + _DATA_KEYS + r"[ \t]*+=)"
    r"[ \t]*+\{)"
    r"|(?P<kind>(?:\\?[\"']kind\\?[\"'][ \t]*+:|(?<![\w.\-])kind[ \t]*+=)[ \t]*+\\?[\"']"
    r"(?P<k>Secret(?:List)?)\\?[\"'])"
    r"|(?P<open>\{)|(?P<close>\})"
)
_FLAT_BODY = re.compile(r"[^{}]*+")
_QSTRING = re.compile(r"""\\"([^"\\\n]*+)\\"|"((?:[^"\\\n]|\\.)*+)"|'((?:[^'\\\n]|\\.)*+)'""")
_YAML_SECRET = re.compile(r"(?m)^[ \t]*+(?:-[ \t]++)?kind:[ \t]*+[\"']?Secret(?:List)?[\"']?[ \t]*+(?:#.*)?$")
_YAML_LINE = re.compile(r"(?m)^( *+)(- ++)?([^\n]*)$")
_YAML_KEY = re.compile(r"""("[^"\n]*+"|'[^'\n]*+'|[^\s"'#:\-][^\n:]*+):(?:[ \t]++|$)""")
_BLOCK_INDICATOR = re.compile(r"[|>][-+0-9]*(?:[ \t]+#.*)?")


def _secret_owned(obj: int, parents: list[int], flags: list[str]) -> bool:
    if flags[obj] == "Secret":
        return True
    while obj >= 0:
        if flags[obj] == "SecretList":
            return True
        obj = parents[obj]
    return False


def _find_secret_braces(t: str, add: _Add) -> None:
    parents, flags, stack = [-1], [""], [0]  # object 0: the text itself (the client's print() form)
    blocks: list[tuple[int, int]] = []
    for m in _SECRET_BRACES.finditer(t):
        if m.group("close") is not None:
            if len(stack) > 1:
                stack.pop()
            continue
        if m.group("kind") is not None:
            flags[stack[-1]] = m.group("k")
            continue
        if m.group("data") is not None:
            blocks.append((stack[-1], m.end()))
        parents.append(stack[-1])
        flags.append("")
        stack.append(len(parents) - 1)
    for owner, start in blocks:
        if not _secret_owned(owner, parents, flags):
            continue
        body = _FLAT_BODY.match(t, start)
        end = body.end() if body is not None else start
        for q in _QSTRING.finditer(t, start, end):
            if _KEY_FOLLOWS.match(t, q.end()):
                continue
            s, e = _quoted_inner(q)
            if not _is_placeholder(t[s:e]):
                add(s, e)


def _find_secret_yaml(t: str, add: _Add) -> None:
    parents, flags = [-1], [""]
    stack: list[tuple[int, int]] = []  # (key column, object)
    blocks: list[tuple[int, list[tuple[int, int]]]] = []
    block_col = child_col = -1
    spans: list[tuple[int, int]] = []
    for m in _YAML_LINE.finditer(t):
        indent, dash, body = len(m.group(1)), m.group(2) or "", m.group(3).rstrip("\r")
        if not body.strip() or body.lstrip().startswith("#"):
            continue
        col = indent + len(dash)
        if block_col >= 0:
            if col > block_col:  # a line of the data block
                start = m.start(3)
                if child_col < 0:
                    child_col = col
                key = _YAML_KEY.match(t, start) if col == child_col else None
                if key is not None:
                    start = key.end()
                value = t[start:m.start(3) + len(body)].strip()
                if value and not _BLOCK_INDICATOR.fullmatch(value):
                    s = t.index(value, start)
                    e = s + len(value)
                    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                        s, e = s + 1, e - 1
                    spans.append((s, e))
                continue
            block_col = child_col = -1
        if indent == 0 and not dash and body.startswith(("---", "...")):
            stack.clear()
            continue
        while stack and stack[-1][0] > col:
            stack.pop()
        if dash:
            while stack and stack[-1][0] >= col:
                stack.pop()
        if not stack or stack[-1][0] < col:
            parents.append(stack[-1][1] if stack else 0)
            flags.append("")
            stack.append((col, len(parents) - 1))
        obj = stack[-1][1]
        key = _YAML_KEY.match(body)
        if key is None:
            continue
        name, value = key.group(1).strip().strip("'\""), body[key.end():].split("#")[0].strip()
        if name == "kind" and value.strip("'\"") in ("Secret", "SecretList"):
            flags[obj] = value.strip("'\"")
        elif name in ("data", "stringData") and not value:
            block_col, spans = col, []
            blocks.append((obj, spans))
    for owner, found in blocks:
        if _secret_owned(owner, parents, flags):
            for s, e in found:
                if not _is_placeholder(t[s:e]):
                    add(s, e)


def _find_kubernetes_secrets(t: str, add: _Add) -> None:
    if _KIND_SECRET.search(t) is None:
        return
    if "{" in t:
        _find_secret_braces(t, add)
    if _YAML_SECRET.search(t) is not None:
        _find_secret_yaml(t, add)


# Tables whose header names a secret column: pandas text (columns right-aligned under their names),
# left-aligned text tables (kubectl-like), pipe tables (psql, markdown) and HTML tables.
_HEADER_TOKEN = re.compile(r"[\w.\-%#/()]+|\.\.\.|…")
_INDEX_AND_VALUE = re.compile(r"[ \t]*+\S++[ \t]{2,}+(\S(?:.*\S)?)")
_PIPE_RULE = re.compile(r"[\s|:+=-]*-[\s|:+=-]*")


def _aligned(row: str, cols: list[tuple[int, int]], mode: str, *, of: int = 0) -> bool:
    """Whether a row has a value at each column (by its right or left edge); one may be empty when
    there are more than two columns (`of`: how many there are, when `cols` is only some of them)."""
    misses = 0
    for s, e in cols:
        if mode == "right":
            ok = e - 1 < len(row) and row[e - 1] != " " and (e >= len(row) or row[e] == " ")
        else:
            ok = s < len(row) and row[s] != " " and (s == 0 or row[s - 1] == " ")
        misses += not ok
    return misses <= (0 if (of or len(cols)) <= 2 else 1)


def _lines_from(t: str, p: int) -> Iterable[tuple[int, str]]:
    n = len(t)
    while p < n:
        q = t.find("\n", p)
        q = n if q < 0 else q
        yield p, t[p:q].rstrip("\r")
        p = q + 1


def _add_stripped(t: str, s: int, e: int, add: _Add) -> None:
    while s < e and t[s] in " \t":
        s += 1
    while e > s and t[e - 1] in " \t":
        e -= 1
    if s < e and not _is_placeholder(t[s:e]):
        add(s, e)


def _aligned_table(t: str, ls: int, header: str, add: _Add) -> int:
    if "=" in header or ": " in header or header.endswith(":"):
        return 0  # key=value or key: value text, not column names
    tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", header)]
    if not 2 <= len(tokens) <= 64 or not all(_HEADER_TOKEN.fullmatch(header[s:e]) for s, e in tokens):
        return 0
    secret = [i for i, (s, e) in enumerate(tokens) if _is_secret_name(header[s:e])]
    if not secret:
        return 0
    rows: list[tuple[int, str]] = []
    mode, end, skipped = "", 0, False
    for p, row in _lines_from(t, ls + len(header) + 1):
        if not row.strip():
            break
        cut = row.find(MASK)
        if cut >= 0:  # redacted before: the mask shifted the columns after it; nothing left to do here
            before = [(s, e) for s, e in tokens if e <= cut]
            modes = [mode] if mode else ["right", "left"]
            fits = [m for m in modes if _aligned(row, before, m, of=len(tokens))]
            if not fits:
                break
            mode = mode or (fits[0] if before else "")
            end = p + len(row)
            continue
        if not mode:
            mode = next((m for m in ("right", "left") if _aligned(row, tokens, m)), "")
            if not mode:
                # pandas prints a named index on a line of its own under the column names
                if not skipped and header[:1] == " " and len(row.split()) == 1 and row[:1] != " ":
                    skipped = True
                    continue
                break
        elif not _aligned(row, tokens, mode):
            break
        rows.append((p, row))
        end = p + len(row)
    for p, row in rows:
        for i in secret:
            s, e = tokens[i]
            if mode == "right":
                a = tokens[i - 1][1] if i else 0
                if not i and header[:1] == " ":
                    iv = _INDEX_AND_VALUE.match(row, 0, e)
                    if iv is not None:
                        a = iv.start(1)
                _add_stripped(t, p + a, p + min(e, len(row)), add)
            else:
                b = tokens[i + 1][0] if i + 1 < len(tokens) else len(row)
                _add_stripped(t, p + s, p + min(b, len(row)), add)
    return end


def _pipe_table(t: str, ls: int, header: str, add: _Add) -> int:
    bars = [i for i, c in enumerate(header) if c == "|"]
    cells = list(zip([-1, *bars], [*bars, len(header)], strict=True))
    secret = [k for k, (a, b) in enumerate(cells) if _is_secret_name(header[a + 1:b].strip())]
    if not secret:
        return 0
    end = 0
    for p, row in _lines_from(t, ls + len(header) + 1):
        if _PIPE_RULE.fullmatch(row):
            continue
        row_bars = [i for i, c in enumerate(row) if c == "|"]
        if len(row_bars) != len(bars):
            break
        row_cells = list(zip([-1, *row_bars], [*row_bars, len(row)], strict=True))
        for k in secret:
            a, b = row_cells[k]
            _add_stripped(t, p + a + 1, p + b, add)
        end = p + len(row)
    return end


def _find_text_tables(t: str, stems: list[int], add: _Add) -> None:
    pos, n = 0, len(t)
    for h in stems:
        if h < pos:
            continue  # a line (or table) already looked at
        ls = t.rfind("\n", pos, h) + 1 or pos
        le = t.find("\n", h)
        le = n if le < 0 else le
        header = t[ls:le].rstrip("\r")
        end = 0
        if len(header) <= 4096:
            end = (_pipe_table if "|" in header else _aligned_table)(t, ls, header, add)
        pos = max(le, end) + 1


_TABLE_TAG = re.compile(r"(?i)<(/?)table\b[^<>]*+>")
_CELL_TAG = re.compile(r"(?i)<(/?)(tr|th|td|thead|tbody|tfoot)\b([^<>]*+)>")
_COLSPAN = re.compile(r"(?i)colspan\s*=\s*[\"']?([0-9]{1,3})")
_TAGS = re.compile(_TAG)


def _html_table(t: str, a: int, b: int, add: _Add) -> None:
    secret: set[int] = set()  # column positions counted from the right (pandas puts index <th> first)
    in_head = False
    row: list[tuple[str, int, int, int]] = []  # (th|td, content start, content end, colspan)
    cell: list[Any] = []

    def close_cell(at: int) -> None:
        if cell:
            row.append((cell[0], cell[1], at, cell[2]))
            cell.clear()

    def finish_row() -> None:
        if not row:
            return
        expanded = [c for c in row for _ in range(max(1, c[3]))]
        header = in_head or all(c[0] == "th" for c in row)
        for k, (_, s, e, _) in enumerate(reversed(expanded)):
            text = html.unescape(_TAGS.sub("", t[s:e])).strip()
            if header:
                if _is_secret_name(text):
                    secret.add(k)
            elif k in secret and not _is_placeholder(text):
                _add_stripped_html(t, s, e, add)
        row.clear()

    for m in _CELL_TAG.finditer(t, a, b):
        closing, tag = m.group(1), m.group(2).lower()
        close_cell(m.start())
        if tag in ("th", "td"):
            if not closing:
                span = _COLSPAN.search(m.group(3))
                cell.extend([tag, m.end(), int(span.group(1)) if span else 1])
            continue
        finish_row()
        if tag == "thead":
            in_head = not closing
    close_cell(b)
    finish_row()


def _add_stripped_html(t: str, s: int, e: int, add: _Add) -> None:
    while s < e and t[s].isspace():
        s += 1
    while e > s and t[e - 1].isspace():
        e -= 1
    if s < e:
        add(s, e)


def _find_html_tables(t: str, add: _Add) -> None:
    start: int | None = None
    for m in _TABLE_TAG.finditer(t):
        if not m.group(1):
            start = m.end()
        elif start is not None:
            _html_table(t, start, m.start(), add)
            start = None
    if start is not None:
        _html_table(t, start, len(t), add)


# --- the redactor ------------------------------------------------------------------------------

_RASTER_PREFIX = "image/"
_TEXT_IMAGES = frozenset({"image/svg+xml"})
_SECRET_DATA_KEYS = ("data", "stringData", "string_data")


def _leaves(value: Any) -> list[str]:
    """The strings and numbers inside a parameter value (a list of tokens, a dict of keys, ...)."""
    if isinstance(value, str):
        return [value]
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [str(value)]
    if isinstance(value, Mapping):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list | tuple | set | frozenset):
        return [leaf for v in value for leaf in _leaves(v)]
    return [str(value)]


_MAX_PASSES = 4



def _distribute(joined: str, pieces: list[str], edits: list[tuple[int, int, str]]) -> list[str]:
    """Apply `edits` (positions in `joined`) to the pieces it was joined from: an edit goes to the
    piece where it starts; what it covers in the following pieces is removed."""
    out: list[str] = []
    a = k = 0
    for piece in pieces:
        b = a + len(piece)
        parts, last = [], a
        while k < len(edits) and edits[k][0] < b:
            s, e, rep = edits[k]
            if s >= a:
                parts += [joined[last:s], rep]
            last = min(e, b)
            if e > b:
                break  # continues in the next piece
            k += 1
        parts.append(joined[last:b])
        out.append("".join(parts))
        a = b
    return out


def _is_multiline(items: Sequence[Any]) -> bool:
    """A list of lines: strings, each but the last ending with a newline (how .ipynb files store text)."""
    return (len(items) > 1 and all(isinstance(i, str) for i in items)
            and all(i.endswith("\n") for i in items[:-1]))


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if s >= e:
            continue
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


_MEMO_CHARS = 32_000_000  # characters of text a redactor remembers having redacted (then starts over)


class Redactor:
    """Shapes, positions and a set of known secret values (from the environment and from parameters)."""

    def __init__(self, known_values: Iterable[str] = ()) -> None:
        values = {v for v in known_values if isinstance(v, str) and v.strip()}
        values = {v for v in values if v not in MASK and not _is_placeholder(v)}
        # Weak values are masked only in value positions; strong ones wherever they appear.
        self._weak = frozenset(values)
        strong: set[str] = set()
        for v in values:
            if len(v) >= _MIN_FREE_TEXT_VALUE and v.lower() not in _COMMON_VALUES:
                strong.update({v, json.dumps(v)[1:-1], urllib.parse.quote(v, safe=""),
                               urllib.parse.quote_plus(v, safe="")})
        # Longest first, so a value that contains another is replaced whole.
        self._known = sorted(strong, key=len, reverse=True)
        self._known_re = re.compile("|".join(map(re.escape, self._known))) if self._known else None
        # Texts already redacted, and their result: a redactor is a pure function of its known values,
        # and a record is redacted again at every write, nearly all of it unchanged since the last.
        self._memo: dict[tuple[str, ...], list[str]] = {}
        self._memo_chars = 0

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None
    ) -> Redactor:
        """Known values: environment variables and parameters (`extra`) whose names say secret."""
        environ = os.environ if environ is None else environ
        known = [v for k, v in environ.items() if is_secret_name(k)]
        for k, v in (extra or {}).items():
            if is_secret_name(k):
                known += _leaves(v)
        return cls(known)

    # --- strings -------------------------------------------------------------------------------

    def _scan(self, t: str, add: _Add) -> None:
        """Every detector except HTML tables, over one clean text."""
        _find_pem(t, add)
        _find_shapes(t, add)
        stems = _stems(t)
        if stems:
            _find_named(t, stems, add, self._weak)
            _find_text_tables(t, stems, add)
        _find_kubernetes_secrets(t, add)
        if self._known_re is not None:
            for m in self._known_re.finditer(t):
                add(*m.span())

    def _edits(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, replacement) in `text`, sorted and disjoint."""
        htmlish = _HTMLISH.search(text) is not None
        spans: list[tuple[int, int]] = []

        def found_in(view: _View) -> _Add:
            if view.identity:
                return lambda s, e: spans.append((s, e))
            return lambda s, e: spans.append((view.start(s), view.end(e)))

        plain = _View(text)  # ANSI codes invisible, entities and escapes decoded
        if htmlish:
            _find_html_tables(plain.clean, found_in(plain))  # tables need their tags
            rendered = _View(text, tags=True)  # ... the rest reads HTML as it is rendered
        else:
            rendered = plain
        self._scan(rendered.clean, found_in(rendered))
        if self._known_re is not None and not rendered.identity:  # a value that contains "&amp;" itself
            spans += [m.span() for m in self._known_re.finditer(text)]
        invisible = _INVISIBLE_TAGS if htmlish else _INVISIBLE
        edits = []
        for s, e in _merge(spans):
            if text[s:e] == MASK:
                continue
            kept = "".join(m.group() for m in invisible.finditer(text, s, e))
            edits.append((s, e, MASK + kept))
        return edits

    def _redact_pieces(self, pieces: list[str]) -> list[str]:
        """Redact pieces read as one text. A mask changes what is around it — a neighbour now stands
        alone ("xyzAKIA…" → "***REDACTED***AKIA…"), brackets inside a masked value are gone — so a text
        that was changed is read again, until nothing changes: the result is a fixed point
        (idempotent). Texts without secrets, nearly all of them, are read once."""
        key = tuple(pieces)
        done = self._memo.get(key)
        if done is not None:
            return list(done)
        for _ in range(_MAX_PASSES):
            joined = "".join(pieces)
            edits = self._edits(joined)
            if not edits:
                break
            pieces = _distribute(joined, pieces, edits)
        size = sum(map(len, key))
        if self._memo_chars + size > _MEMO_CHARS:
            self._memo.clear()
            self._memo_chars = 0
        self._memo[key] = list(pieces)
        self._memo_chars += size
        return pieces

    def text(self, text: str) -> str:
        """`text` with every secret replaced by MASK."""
        if not isinstance(text, str) or not text:
            return text
        try:
            return self._redact_pieces([text])[0]
        except Exception:  # fail closed: a detector bug must not leak what it was looking at
            return MASK

    def pieces(self, pieces: Sequence[str]) -> list[str]:
        """Redact strings that are read as one text (chunks of a stream): a secret split between
        pieces is found in the joined text; its mask goes to the piece where it starts, and the rest
        of it is removed from the following pieces, so the pieces still join to `text(joined)`."""
        pieces = list(pieces)
        try:
            return self._redact_pieces(pieces)
        except Exception:
            return [MASK if p else p for p in pieces]

    # --- structures ----------------------------------------------------------------------------

    def outputs(self, outputs: Sequence[Any]) -> list[Any]:
        """Redact a code cell's `outputs`. Stream outputs are redacted as one text per stream name
        (stdout, stderr): a secret printed in two chunks, even with the other stream in between, is
        still found. Other outputs go through `value()`."""
        redacted: list[Any] = [None] * len(outputs)
        streams: dict[str, list[int]] = {}
        for i, out in enumerate(outputs):
            if (isinstance(out, Mapping) and out.get("output_type") == "stream"
                    and isinstance(out.get("text"), str | list)):
                streams.setdefault(str(out.get("name", "")), []).append(i)
            else:
                redacted[i] = self.value(out)
        for indexes in streams.values():
            texts = [outputs[i]["text"] for i in indexes]
            joined = [t if isinstance(t, str) else "".join(map(str, t)) for t in texts]
            for i, orig, new in zip(indexes, texts, self.pieces(joined), strict=True):
                out = {k: (v if k in ("name", "output_type") else self.value(v))
                       for k, v in outputs[i].items() if k != "text"}
                out["text"] = new if isinstance(orig, str) else new.splitlines(keepends=True)
                redacted[i] = out
        return redacted

    def value(self, obj: Any) -> Any:
        """Redact every string in a JSON-like structure (dicts, lists, strings; a notebook).

        Under a secret-named key every leaf string or number is masked (`{"tokens": ["a", "b"]}`),
        as is everything under data/stringData of a Kubernetes Secret; a code cell's outputs go
        through `outputs()`; raster images are left alone.
        """
        try:
            return self._value(obj, False)
        except RecursionError:
            return MASK

    def _value(self, obj: Any, secret: bool) -> Any:
        if isinstance(obj, str):
            if secret:
                return MASK if obj and not _is_placeholder(obj) else obj
            return self.text(obj)
        if obj is None or isinstance(obj, bool):
            return obj
        if isinstance(obj, Mapping):
            return self._mapping(obj, secret)
        if isinstance(obj, list | tuple):
            if not secret and _is_multiline(obj):  # nbformat's on-disk form of a multi-line string
                return type(obj)(self.pieces(obj))
            return type(obj)(self._value(v, secret) for v in obj)
        return MASK if secret else obj  # a number, bytes, any other leaf under a secret-named key

    def _mapping(self, obj: Mapping[Any, Any], secret: bool, *,
                 secret_object: bool = False) -> dict[Any, Any]:
        kind = obj.get("kind")
        secret_object = secret_object or kind == "Secret"
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                out[k] = self._value(v, secret)
            elif k.startswith(_RASTER_PREFIX) and k not in _TEXT_IMAGES:
                out[k] = v
            elif k == "outputs" and obj.get("cell_type") == "code" and isinstance(v, list) and not secret:
                out[k] = self.outputs(v)
            elif kind == "SecretList" and k == "items" and isinstance(v, list):
                out[k] = [self._mapping(i, secret, secret_object=True) if isinstance(i, Mapping)
                          else self._value(i, secret) for i in v]
            else:
                hide = secret or is_secret_name(k) or (secret_object and k in _SECRET_DATA_KEYS)
                out[k] = self._value(v, hide)
        return out


def redact_text(text: str) -> str:
    """Redact one string with the patterns and the current environment's secret values."""
    return Redactor.from_environment().text(text)


def redact(obj: Any, *, extra: Mapping[str, Any] | None = None) -> Any:
    """Redact a JSON-like structure with the current environment's secret values and `extra`."""
    return Redactor.from_environment(extra=extra).value(obj)
