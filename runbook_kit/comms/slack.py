"""The incident's Slack thread, through the official `slack_sdk` WebClient.

One thread per incident: its parent message is a one-line status header (severity, status, commander,
last update) kept current with `chat.update`; every update, note and run summary is a reply. The
channel and the parent's `ts` are kept in the incident's state (`comms.slack`), so any process —
a runbook run, a command, the alert receiver — posts to the same thread.

The channel is the team's own, so posts are sent (not dry-run). HTTP 429 is honoured: slack_sdk's
RateLimitErrorRetryHandler sleeps for `Retry-After` and retries. Configuration (runbook.yaml):

    comms:
      slack: {channel: C0INCIDENTS, token_env: SLACK_BOT_TOKEN}

`RUNBOOK_SLACK_API_URL` points the client elsewhere (the sandbox's local Slack Web API). The token is
read from the environment, never from the file. This is the only module that imports slack_sdk.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from runbook_kit.errors import BackendError, ParameterError, translate

__all__ = ["SlackThread", "configured", "web_client"]

DEFAULT_API_URL = "https://slack.com/api/"


def _config(comms: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if comms is None:
        from runbook_kit import settings

        comms = settings.get().comms
    return comms.get("slack") or {}


def configured(comms: Mapping[str, Any] | None = None) -> bool:
    """Whether a channel is configured and its token is in the environment."""
    cfg = _config(comms)
    return bool(cfg.get("channel")) and bool(os.environ.get(cfg.get("token_env", "SLACK_BOT_TOKEN")))


def web_client(*, comms: Mapping[str, Any] | None = None, max_retries: int = 3) -> Any:
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
    )

    cfg = _config(comms)
    token_env = cfg.get("token_env", "SLACK_BOT_TOKEN")
    token = os.environ.get(token_env)
    if not token:
        raise ParameterError(f"no Slack token: set ${token_env} (comms.slack.token_env in runbook.yaml)")
    base_url = os.environ.get("RUNBOOK_SLACK_API_URL") or cfg.get("api_url") or DEFAULT_API_URL
    return WebClient(token=token, base_url=base_url.rstrip("/") + "/", timeout=15,
                     retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1),
                                     RateLimitErrorRetryHandler(max_retry_count=max_retries)])


class SlackThread:
    """Post to an incident's thread. `client` is any slack_sdk WebClient (tests pass their own)."""

    def __init__(self, *, channel: str, ts: str | None = None, client: Any) -> None:
        self.channel, self.ts, self.client = channel, ts, client

    def _call(self, op: str, **kwargs: Any) -> Mapping[str, Any]:
        from slack_sdk.errors import SlackApiError

        try:
            response = getattr(self.client, op)(**kwargs)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            status = exc.response.status_code
            headers = exc.response.headers or {}
            if status == 429:
                from runbook_kit.errors import Throttled

                retry = headers.get("Retry-After") or headers.get("retry-after")
                wait = float(retry) if retry else None
                raise Throttled("slack", op, "rate limited", retry_after=wait) from exc
            raise BackendError("slack", op, str(data.get("error") or f"HTTP {status}")) from exc
        except Exception as exc:
            raise translate(exc, backend="slack", op=op) from exc
        return response.data if isinstance(response.data, dict) else {}

    def start(self, header: str) -> str:
        """Post the parent message (the status header); returns its ts."""
        data = self._call("chat_postMessage", channel=self.channel, text=header)
        self.channel = str(data.get("channel") or self.channel)
        self.ts = str(data["ts"])
        return self.ts

    def set_header(self, header: str) -> None:
        if self.ts is None:
            raise ParameterError("the thread has not been started")
        self._call("chat_update", channel=self.channel, ts=self.ts, text=header)

    def reply(self, text: str) -> str:
        if self.ts is None:
            raise ParameterError("the thread has not been started")
        data = self._call("chat_postMessage", channel=self.channel, thread_ts=self.ts, text=text)
        return str(data.get("ts", ""))

    def direct(self, user: str, text: str) -> str:
        """A direct message (leadership for P0/P1): posting to a user id opens the DM."""
        data = self._call("chat_postMessage", channel=user, text=text)
        return str(data.get("ts", ""))
