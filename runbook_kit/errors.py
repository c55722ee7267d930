"""The kit's exceptions: one tree, split by cause, never an SDK type.

    RunbookError
      ├─ ParameterError              bad or undeclared parameter, bad incident id
      ├─ UnknownRunbook              no notebook of that name
      ├─ BackendError(backend, op)   a call to AWS, Kubernetes or PostgreSQL failed
      │    ├─ NotFound               404 / NoSuch* / undefined object
      │    ├─ Forbidden              401 / 403 / AccessDenied / insufficient_privilege
      │    ├─ Conflict               409 / 412 / 422 / invalid state, failed precondition
      │    ├─ Throttled(retry_after) 429 / Throttling / too_many_connections
      │    ├─ Unavailable            connection refused, timeout, 5xx
      │    └─ NotConfigured          no region / credentials / kubeconfig / DSN for this backend
      └─ UnsafeActionRefused         over its blast radius, or refused by the guard

An on-call engineer reads these at 3 a.m., in a notebook or a terminal: `str(err)` is one line
that names the backend, the operation and the cause, cut short and redacted. The SDK exception
stays reachable as `__cause__` for whoever debugs the kit, but never crosses the public API.

`translate()` maps an SDK exception to this tree by duck typing (status codes, error codes,
SQLSTATEs), so this module imports no SDK: `runbook_kit.clients` is the only module that does.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator

__all__ = [
    "BackendError",
    "Conflict",
    "Forbidden",
    "NotConfigured",
    "NotFound",
    "ParameterError",
    "RunbookError",
    "Throttled",
    "Unavailable",
    "UnknownRunbook",
    "UnsafeActionRefused",
    "backend_call",
    "translate",
]

_MAX_MESSAGE = 300


class RunbookError(Exception):
    """Base of every error the kit raises on purpose."""


class ParameterError(RunbookError, ValueError):
    """A parameter that the runbook does not declare, or a value of the wrong type."""


class UnknownRunbook(RunbookError, LookupError):
    """No runbook of that name."""


class UnsafeActionRefused(RunbookError):
    """The guard refused a mutation: over its blast radius, or missing what it needs to be safe."""


class BackendError(RunbookError):
    """A backend call failed. `backend` is aws/k8s/postgres; `op` names the operation."""

    reason = "failed"

    def __init__(self, backend: str, op: str, message: str = "") -> None:
        self.backend = backend
        self.op = op
        self.message = _short(message)
        super().__init__(str(self))

    def __str__(self) -> str:
        tail = f": {self.message}" if self.message else ""
        return f"{self.backend} {self.op}: {self.reason}{tail}"


class NotFound(BackendError):
    reason = "not found"


class Forbidden(BackendError):
    reason = "permission denied"


class Conflict(BackendError):
    reason = "rejected"


class Throttled(BackendError):
    reason = "throttled"

    def __init__(self, backend: str, op: str, message: str = "", retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(backend, op, message)


class Unavailable(BackendError):
    reason = "unreachable"


class NotConfigured(BackendError):
    """Nothing tells the kit how to reach this backend; the message names the setting that would."""

    reason = "not configured"


def _short(message: str) -> str:
    from runbook_kit.redact import redact_text

    text = " ".join(str(message).split())
    text = redact_text(text)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


# --- translation -------------------------------------------------------------------------------

_HTTP_CLASSES: dict[int, type[BackendError]] = {
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: NotFound,
    412: Conflict,
    422: Conflict,
    429: Throttled,
}

_AWS_CODES: list[tuple[str, type[BackendError]]] = [
    (r"^(AccessDenied|UnauthorizedOperation|UnrecognizedClient|InvalidClientTokenId|"
     r"ExpiredToken|AuthFailure|SignatureDoesNotMatch|NotAuthorized)", Forbidden),
    (r"(NotFound|NoSuch|DoesNotExist|NotExist)", NotFound),
    (r"^(Throttl|TooManyRequests|RequestLimitExceeded|SlowDown|ProvisionedThroughputExceeded)", Throttled),
    (r"^(ServiceUnavailable|InternalError|InternalFailure|ServiceFailure)", Unavailable),
    (r"^(Invalid.*State|.*InUse|.*Conflict|DryRunOperation|PreconditionFailed|ConditionalRequestConflict)",
     Conflict),
]

# SQLSTATE classes: 08 connection, 28 authorization, 42501 insufficient privilege, 53300 too many
# connections, 57P0x server shutting down, 42P01/42883/3D000 undefined objects.
_PG_STATES: list[tuple[str, type[BackendError]]] = [
    (r"^(42501|28)", Forbidden),
    (r"^(53300|53400)", Throttled),
    (r"^(08|57P0|53)", Unavailable),
    (r"^(42P01|42883|42704|3D000|42P02)", NotFound),
]


def translate(exc: BaseException, *, backend: str, op: str) -> BackendError:
    """Map an SDK or network exception to the kit's tree (the caller raises it `from exc`)."""
    if isinstance(exc, BackendError):
        return exc
    # botocore ClientError: .response = {"Error": {"Code", "Message"}, "ResponseMetadata": {...}}
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        code = str(response["Error"].get("Code", ""))
        message = f"{code}: {response['Error'].get('Message', '')}".strip(": ")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        for pattern, cls in _AWS_CODES:
            if re.search(pattern, code):
                return cls(backend, op, message)
        return _HTTP_CLASSES.get(status or 0, BackendError)(backend, op, message)
    # kubernetes ApiException: .status (int), .reason, .body (a Status object as JSON)
    status = getattr(exc, "status", None)
    if isinstance(status, int) and hasattr(exc, "reason") and hasattr(exc, "body"):
        message = _k8s_message(exc)
        if status == 429:
            retry = (getattr(exc, "headers", None) or {}).get("Retry-After")
            return Throttled(backend, op, message, retry_after=float(retry) if retry else None)
        if status >= 500:
            return Unavailable(backend, op, message)
        return _HTTP_CLASSES.get(status, BackendError)(backend, op, message)
    # psycopg errors: .sqlstate; OperationalError on connect has none
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        for pattern, cls in _PG_STATES:
            if re.match(pattern, sqlstate):
                return cls(backend, op, str(exc))
        return BackendError(backend, op, str(exc))
    name = type(exc).__name__
    if isinstance(exc, ConnectionError | TimeoutError | socket.timeout | OSError) or name in {
        "OperationalError", "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
        "MaxRetryError", "NewConnectionError", "ConnectionClosedError", "NoCredentialsError",
        "PartialCredentialsError", "ProtocolError", "ConfigException",
    }:
        if name in {"NoCredentialsError", "PartialCredentialsError", "ConfigException"}:
            return NotConfigured(backend, op, _not_configured_message(exc, name, backend))
        return Unavailable(backend, op, _network_message(exc, name))
    return BackendError(backend, op, f"{name}: {exc}")


_SETTINGS = {
    "aws": "AWS credentials (AWS_PROFILE, SSO, an instance role, or AWS_ACCESS_KEY_ID) and AWS_REGION",
    "k8s": "KUBECONFIG / RUNBOOK_KUBE_CONTEXT (or run in a cluster)",
    "postgres": "RUNBOOK_DSN, DATABASE_URL or PG* variables",
}


def _not_configured_message(exc: BaseException, name: str, backend: str) -> str:
    setting = _SETTINGS.get(backend, "its settings")
    return f"{name}: {exc}; set {setting}" if str(exc) else f"{name}; set {setting}"


def _network_message(exc: BaseException, name: str) -> str:
    """'cannot connect to 127.0.0.1:9 (Connection refused)' rather than urllib3's nested repr."""
    text = str(exc)
    where = (re.search(r"host='([^']+)', port=(\d+)", text)
             or re.search(r"https?://([^/:\s\"']+):?(\d*)", text))
    cause = re.search(r"\[Errno -?\d+\] ([^\"'()]+)", text)
    if where and (cause or "timed out" in text.lower()):
        host = where.group(1) + (f":{where.group(2)}" if where.group(2) else "")
        reason = cause.group(1).strip() if cause else "timed out"
        return f"cannot connect to {host} ({reason})"
    return f"{name}: {text}" if text else name


def _k8s_message(exc: BaseException) -> str:
    import json

    body = getattr(exc, "body", None)
    if body:
        try:
            status = json.loads(body)
            if isinstance(status, dict) and status.get("message"):
                return str(status["message"])
        except (TypeError, ValueError):
            pass
    return f"{getattr(exc, 'status', '')} {getattr(exc, 'reason', '')}".strip()


@contextlib.contextmanager
def backend_call(backend: str, op: str) -> Iterator[None]:
    """Run SDK calls inside this block: any SDK or network error leaves it as a BackendError."""
    try:
        yield
    except RunbookError:
        raise
    except Exception as exc:
        raise translate(exc, backend=backend, op=op) from exc
