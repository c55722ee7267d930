"""Fixtures of the serve tests (defined in serve_harness, which the tests import their helpers from)."""

from serve_harness import alertmanager, prometheus, serve

__all__ = ["alertmanager", "prometheus", "serve"]
