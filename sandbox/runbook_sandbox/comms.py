"""Local stand-ins for the APIs an incident talks to: Slack Web API, Statuspage, PagerDuty Events v2.

One HTTP server on 127.0.0.1 answers, in the real services' shapes:

* Slack Web API (`/api/<method>`): `auth.test`, `chat.postMessage` (channel messages, thread replies,
  DMs to user ids), `chat.update`, `conversations.replies`. It checks the bearer token (`xox…`), the
  channel, that a message has text or blocks, and that `thread_ts` / `ts` name a message it holds;
  errors are `{"ok": false, "error": "…"}` like Slack's. `POST /_sandbox/rate_limit` makes the next N
  calls answer 429 with `Retry-After`, so clients' back-off is tested against real responses.
* Statuspage (`/v1/pages/<page>/incidents[/<id>]`): POST creates, PATCH adds an update; needs
  `Authorization: OAuth <key>`, a valid status and a name on create.
* PagerDuty Events v2 (`/v2/enqueue`): a 32-character routing key, event_action, dedup_key, and for
  `trigger` a payload with summary, source and a valid severity; 202 like PagerDuty.

Every request is kept (`GET /_sandbox/received`, authorization values masked) so tests assert on what
the real SDKs really sent. Run: `python -m runbook_sandbox.comms --port 0` prints one JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["CommsServer", "main"]

_SP_STATUSES = {"investigating", "identified", "monitoring", "resolved", "scheduled", "in_progress",
                "verifying", "completed"}
_PD_SEVERITIES = {"critical", "error", "warning", "info"}


class CommsServer:
    """The three APIs in one threaded server; `start()` returns its base URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> ts -> message
        self.incidents: dict[str, dict[str, Any]] = {}
        self.rate_limit = {"count": 0, "retry_after": 1}
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def _body(self) -> tuple[dict[str, Any], str]:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                ctype = self.headers.get("Content-Type", "")
                if "application/json" in ctype:
                    return (json.loads(raw) if raw else {}), raw
                return {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}, raw

            def do_GET(self) -> None:
                if self.path.startswith("/_sandbox/received"):
                    with server._lock:
                        return self._reply(200, server.received)
                self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def _handle(self, method: str) -> None:
                try:
                    body, _ = self._body()
                except (ValueError, UnicodeDecodeError):
                    return self._reply(400, {"error": "invalid body"})
                path = urllib.parse.urlparse(self.path).path
                if path == "/_sandbox/rate_limit":
                    server.rate_limit.update(body)
                    return self._reply(200, server.rate_limit)
                auth = self.headers.get("Authorization", "")
                service = ("slack" if path.startswith("/api/") else "statuspage" if path.startswith("/v1/")
                           else "pagerduty" if path.startswith("/v2/") else "unknown")
                with server._lock:
                    server.received.append({"service": service, "method": method, "path": path,
                                            "authorization": auth.split(" ")[0] if auth else "",
                                            "body": body, "at": time.time()})
                    status, reply, headers = server.answer(service, method, path, body, auth)
                self._reply(status, reply, headers)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    # --- the APIs --------------------------------------------------------------------------------

    def answer(self, service: str, method: str, path: str, body: dict[str, Any],
               auth: str) -> tuple[int, Any, dict[str, str]]:
        if service == "slack":
            if self.rate_limit["count"] > 0:
                self.rate_limit["count"] -= 1
                wait = str(self.rate_limit["retry_after"])
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": wait}
            return 200, self._slack(path[len("/api/"):], body, auth), {}
        if service == "statuspage":
            return self._statuspage(method, path, body, auth)
        if service == "pagerduty" and path == "/v2/enqueue":
            return self._pagerduty(body)
        return 404, {"error": "not found"}, {}

    def _slack(self, api: str, body: dict[str, Any], auth: str) -> dict[str, Any]:
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else body.get("token", "")
        if not token:
            return {"ok": False, "error": "not_authed"}
        if not str(token).startswith("xox"):
            return {"ok": False, "error": "invalid_auth"}
        if api == "auth.test":
            return {"ok": True, "team": "sandbox", "user": "runbook", "bot_id": "B0SANDBOX"}
        channel = str(body.get("channel") or "")
        if api == "conversations.replies":
            msgs = self.messages.get(channel, {})
            ts = str(body.get("ts", ""))
            if ts not in msgs:
                return {"ok": False, "error": "thread_not_found"}
            thread = [m for m in msgs.values() if m["ts"] == ts or m.get("thread_ts") == ts]
            return {"ok": True, "messages": thread}
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not (body.get("text") or body.get("blocks")):
            return {"ok": False, "error": "no_text"}
        if api == "chat.postMessage":
            msgs = self.messages.setdefault(channel, {})
            thread_ts = body.get("thread_ts")
            if thread_ts and thread_ts not in msgs:
                return {"ok": False, "error": "thread_not_found"}
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            msg = {"type": "message", "ts": ts, "text": body.get("text", ""), "user": "U0RUNBOOK"}
            if thread_ts:
                msg["thread_ts"] = thread_ts
            msgs[ts] = msg
            return {"ok": True, "channel": channel, "ts": ts, "message": msg}
        if api == "chat.update":
            msgs = self.messages.get(channel, {})
            ts = str(body.get("ts", ""))
            if ts not in msgs:
                return {"ok": False, "error": "message_not_found"}
            msgs[ts] = {**msgs[ts], "text": body.get("text", ""), "edited": {"ts": str(time.time())}}
            return {"ok": True, "channel": channel, "ts": ts, "text": body.get("text", "")}
        return {"ok": False, "error": "unknown_method"}

    def _statuspage(self, method: str, path: str, body: dict[str, Any],
                    auth: str) -> tuple[int, Any, dict[str, str]]:
        if not auth.startswith("OAuth ") or len(auth) < 10:
            return 401, {"error": "Could not authenticate"}, {}
        parts = path.strip("/").split("/")  # v1 pages <page> incidents [<id>]
        if len(parts) < 4 or parts[1] != "pages" or parts[3] != "incidents":
            return 404, {"error": "not found"}, {}
        inc = body.get("incident")
        if not isinstance(inc, dict):
            return 400, {"error": "incident is missing"}, {}
        status = inc.get("status")
        if status is not None and status not in _SP_STATUSES:
            return 422, {"error": f"Status is not included in the list: {status}"}, {}
        update = {"status": status, "body": inc.get("body", ""), "created_at": time.strftime("%FT%TZ")}
        if method == "POST" and len(parts) == 4:
            if not inc.get("name"):
                return 422, {"error": "Name can't be blank"}, {}
            iid = f"sp{len(self.incidents) + 1:04d}"
            self.incidents[iid] = {"id": iid, "page_id": parts[2], "name": inc["name"], "status": status,
                                   "incident_updates": [update],
                                   "component_ids": inc.get("component_ids", [])}
            return 201, self.incidents[iid], {}
        if method == "PATCH" and len(parts) == 5:
            found = self.incidents.get(parts[4])
            if not found or found["page_id"] != parts[2]:
                return 404, {"error": "not found"}, {}
            found["status"] = status or found["status"]
            found["incident_updates"].insert(0, update)
            return 200, found, {}
        return 405, {"error": "method not allowed"}, {}

    def _pagerduty(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        errors = []
        if len(str(body.get("routing_key", ""))) != 32:
            errors.append("'routing_key' must be 32 characters")
        if body.get("event_action") not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        if body.get("event_action") != "trigger" and not body.get("dedup_key"):
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if body.get("event_action") == "trigger":
            payload = body.get("payload") or {}
            for field in ("summary", "source", "severity"):
                if not payload.get(field):
                    errors.append(f"'payload.{field}' is missing")
            if payload.get("severity") and payload["severity"] not in _PD_SEVERITIES:
                errors.append("'payload.severity' is invalid")
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid",
                         "errors": errors}, {}
        return 202, {"status": "success", "message": "Event processed",
                     "dedup_key": body.get("dedup_key")}, {}

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> str:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runbook_sandbox.comms")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = CommsServer(port=args.port)
    print(json.dumps({"url": server.url}), flush=True)
    sys.stdout.flush()
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
