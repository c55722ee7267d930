"""Inside a Jupyter kernel, a RunbookError is shown as one readable line instead of a traceback.

The cell still fails (an `error` output), so a headless run stops there and the record names the
cell; the on-call engineer sees `k8s read deployment: not found: deployments.apps "api" not found`
rather than forty lines of urllib3 frames. Other exceptions keep IPython's normal traceback.
"""

from __future__ import annotations

from typing import Any

from runbook_kit.errors import RunbookError


def _handler(shell: Any, etype: type[BaseException], value: BaseException, tb: Any,
             tb_offset: int | None = None) -> list[str]:
    line = f"{etype.__name__}: {value}"
    shell._showtraceback(etype, value, [f"\x1b[0;31m{line}\x1b[0m"])
    return [line]


def install() -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "set_custom_exc"):
        shell.set_custom_exc((RunbookError,), _handler)
    _figures_as_png(shell)


def _figures_as_png(shell: Any) -> None:
    """Helpers return `matplotlib.figure.Figure` objects without importing pyplot; IPython shows those
    as PNG only once the inline backend is active. Register the PNG formatter by name: deferred, so
    matplotlib is imported only when a Figure is displayed."""
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
    if not formatters or "image/png" not in formatters:
        return

    def png(fig: Any) -> Any:
        from IPython.core.pylabtools import print_figure

        return print_figure(fig, "png", bbox_inches="tight")

    formatters["image/png"].for_type_by_name("matplotlib.figure", "Figure", png)
