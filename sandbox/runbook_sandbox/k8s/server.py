"""HTTP transport: a stdlib ThreadingHTTPServer on 127.0.0.1 speaking HTTP/1.1 with keep-alive.

It turns requests into `api.Request`s, writes JSON (or text for logs, chunked for watches) and keeps
the request log: one JSON line per request in `<state-dir>/k8s-requests.jsonl`, also served at
`GET /_sandbox/requests`, so a test can prove that a dry run sent no write (every entry is a
read or carries `dry_run: true`) and which identity made each request (`user`: the admin, or a Job
pod's ServiceAccount as `system:serviceaccount:NS:NAME`). `GET /_sandbox/kube-state-metrics` is for
Prometheus (k8s/ksm.py).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from runbook_sandbox.k8s import ksm
from runbook_sandbox.k8s.api import Api, Request, Response
from runbook_sandbox.k8s.podenv import identity
from runbook_sandbox.k8s.store import iso, now

MAX_BODY = 10 * 1024 * 1024


class RequestLog:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._file = path.open("a", buffering=1, encoding="utf-8")

    def add(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":"))
        with self._lock:
            self._entries.append(entry)
            self._file.write(line + "\n")

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _encode(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":")).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "runbook-sandbox-k8s"
    api: Api
    log: RequestLog

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the JSON request log replaces the stderr access log

    def _handle(self) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_BODY)) if length else b""
        if url.path == "/_sandbox/requests" and self.command == "GET":
            self._send(Response(200, self.log.entries()))
            return
        if url.path.startswith("/_sandbox/health/") and self.command == "GET":  # the services' health checks
            from runbook_sandbox.k8s.health import health

            namespace, _, deployment = url.path[len("/_sandbox/health/"):].partition("/")
            self._send(Response(*health(self.api.store, namespace, deployment)))
            return
        if url.path == ksm.PATH and self.command == "GET":  # what Prometheus scrapes (not logged)
            try:
                self._send(Response(200, ksm.render(self.api), content_type="text/plain; version=0.0.4"))
            except Exception as exc:  # a sandbox bug answers 500, never hangs the scraper
                why = f"sandbox error: {type(exc).__name__}: {exc}"
                self._send(Response(500, why, content_type="text/plain"))
            return
        req = Request(
            method=self.command,
            path=url.path,
            query=query,
            accept=self.headers.get("Accept") or "application/json",
            content_type=self.headers.get("Content-Type") or "application/json",
            body=body,
        )
        sa = identity(self.headers.get("Authorization"))
        if sa is not None:
            req.user = sa[2]
        try:
            response = self.api.handle(req)
        except Exception as exc:  # a sandbox bug must answer 500, not hang the client
            response = Response(
                500,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f"sandbox error: {type(exc).__name__}: {exc}",
                    "reason": "InternalError",
                    "code": 500,
                },
            )
        self.log.add(
            {
                "ts": iso(now()),
                "method": self.command,
                "path": url.path,
                "query": query,
                "dry_run": response.dry_run,
                "status": response.status,
                "verb": response.verb or _verb_of(self.command),
                "user": req.user,
            }
        )
        self._send(response)

    def _send(self, response: Response) -> None:
        if response.stream is not None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for chunk in response.stream:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            return
        payload = _encode(response.body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


def _verb_of(method: str) -> str:
    return {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def make_server(*, api_factory: Any, port: int, log_path: Path) -> tuple[Server, RequestLog]:
    """Bind 127.0.0.1:port (0 = any free port); `api_factory(server_address)` builds the Api."""
    log = RequestLog(log_path)
    handler: type[Handler] = type("BoundHandler", (Handler,), {"log": log})
    server = Server(("127.0.0.1", port), handler)
    handler.api = api_factory(f"127.0.0.1:{server.server_port}")
    return server, log
