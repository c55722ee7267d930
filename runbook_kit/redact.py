"""Scrub secrets from anything that may reach an incident record.

The executed notebook is attached to a postmortem and read by many people, so every string that
goes into it — cell outputs, parameters, notebook metadata, incident.json, the HTML export — is
passed through `redact()` first. Two complementary nets:

* **Patterns**: AWS access key ids, secret keys and session tokens, passwords in URLs and libpq
  DSNs, bearer/basic authorization headers, private key blocks, `NAME=value` pairs whose name looks
  secret, and Kubernetes Secret `data`/`stringData`.
* **Known values**: the values of environment variables whose names contain SECRET, TOKEN,
  PASSWORD, KEY or CREDENTIAL (and of parameters with such names), replaced wherever they appear,
  whatever their shape.

Redaction is idempotent and never raises: a record with a false positive is better than a
record with a leaked key. Binary payloads (image/*) are left alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MASK", "Redactor", "is_secret_name", "redact", "redact_text"]

MASK = "***REDACTED***"
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|KEY|CREDENTIAL", re.IGNORECASE)
# Names that contain KEY but hold no secret: never mask their values as "known values".
_NOT_SECRET_NAMES = {"KEYMAP", "KEYTIMEOUT"}
_MIN_KNOWN_VALUE = 6

_NAME_CHARS = r"[A-Za-z0-9_.\-]*"
_SECRET_WORD = r"(?:secret|token|password|passwd|api[_-]?key|access[_-]?key|private[_-]?key|credential)"  # noqa: S105

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # -----BEGIN RSA PRIVATE KEY----- ... -----END RSA PRIVATE KEY-----
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S), MASK),
    # AWS access key ids (AKIA long-term, ASIA temporary, and the other IAM unique-id prefixes)
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b"), MASK),
    # Authorization headers
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]{8,}=*"), r"\1 " + MASK),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@'\"]*:)([^\s@'\"/]+)(@)"), r"\1" + MASK + r"\3"),
    # key=value / key: value / "key": "value" where the key looks secret (libpq password=..., env dumps,
    # JSON, YAML, HTTP headers such as X-Amz-Security-Token)
    (
        re.compile(
            r"(?i)(\b" + _NAME_CHARS + _SECRET_WORD + _NAME_CHARS + r"""["']?\s*[:=]\s*["']?)"""
            r"""(?!\*\*\*REDACTED)([^\s"',;&}]{4,})"""
        ),
        r"\1" + MASK,
    ),
    # AWS secret access keys (40 chars, base64 alphabet, mixed case) standing alone
    (re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+=]*[A-Z])(?=[A-Za-z0-9/+=]*[a-z])"
                r"(?=[A-Za-z0-9/+=]*[0-9/+])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"), MASK),
    # AWS session tokens (STS): long base64 strings with the well-known prefixes
    (re.compile(r"\b(?:FwoGZXIvYXdz|IQoJb3JpZ2lu|FQoGZXIvYXdz)[A-Za-z0-9/+=]{20,}"), MASK),
    # JSON web tokens
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), MASK),
]


def is_secret_name(name: str) -> bool:
    """Whether a variable or parameter name suggests its value is a secret."""
    return bool(_SECRET_NAME.search(name)) and name.upper() not in _NOT_SECRET_NAMES


class Redactor:
    """Patterns plus a set of known secret values (from the environment and from parameters)."""

    def __init__(self, known_values: Iterable[str] = ()) -> None:
        values = {v for v in known_values if isinstance(v, str) and len(v) >= _MIN_KNOWN_VALUE}
        # Longest first, so a value that contains another is replaced whole.
        self._known = sorted(values, key=len, reverse=True)
        self._known_re = (
            re.compile("|".join(re.escape(v) for v in self._known)) if self._known else None
        )

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None
    ) -> Redactor:
        environ = os.environ if environ is None else environ
        known = [v for k, v in environ.items() if is_secret_name(k)]
        known += [str(v) for k, v in (extra or {}).items() if is_secret_name(k) and v is not None]
        return cls(known)

    def text(self, text: str) -> str:
        if not text:
            return text
        if self._known_re is not None:
            text = self._known_re.sub(MASK, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def value(self, obj: Any, *, _key: str = "") -> Any:
        """Redact every string in a JSON-like structure (dicts, lists, strings)."""
        if isinstance(obj, str):
            return MASK if _key and is_secret_name(_key) and obj and obj != MASK else self.text(obj)
        if isinstance(obj, Mapping):
            if obj.get("kind") == "Secret":
                obj = {k: ({kk: MASK for kk in v} if k in ("data", "stringData") and isinstance(v, Mapping)
                           else v) for k, v in obj.items()}
            out = {}
            for k, v in obj.items():
                if isinstance(k, str) and k.startswith("image/"):
                    out[k] = v
                else:
                    out[k] = self.value(v, _key=k if isinstance(k, str) else "")
            return out
        if isinstance(obj, list | tuple):
            return type(obj)(self.value(v) for v in obj)
        return obj


def redact_text(text: str) -> str:
    """Redact one string with the patterns and the current environment's secret values."""
    return Redactor.from_environment().text(text)


def redact(obj: Any, *, extra: Mapping[str, Any] | None = None) -> Any:
    """Redact a JSON-like structure with the current environment's secret values and `extra`."""
    return Redactor.from_environment(extra=extra).value(obj)
