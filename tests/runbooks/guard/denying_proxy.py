"""A forwarding proxy on 127.0.0.1 that answers some requests with an error and passes the rest on.

It stands between a runbook and a sandbox server to make a system *partly* missing the way real ones
are: a cluster that does not serve metrics.k8s.io, an AWS account whose role lacks one permission.
Everything else reaches the real sandbox server unchanged.
"""

from __future__ import annotations

import http.client
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

# (method, path, headers) -> None to forward, or (status, content type, body) to answer instead
Rule = Callable[[str, str, Any], tuple[int, str, dict[str, Any]] | None]
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@contextmanager
def denying_proxy(upstream: str, rule: Rule) -> Iterator[tuple[str, list[str]]]:
    """Yield (the proxy's URL, the requests it refused)."""
    target = urlsplit(upstream)
    refused: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = rule(self.command, self.path, self.headers)
            if answer is not None:
                refused.append(f"{self.command} {self.path}")
                status, content_type, payload = answer
                self._send(status, [("Content-Type", content_type)], json.dumps(payload).encode())
                return
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP | {"host"}}
            headers["Host"] = target.netloc
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            conn.close()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP | {"content-length"}]
            self._send(response.status, kept, data)

        def _send(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", refused
    finally:
        server.shutdown()
        server.server_close()
