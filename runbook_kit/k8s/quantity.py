"""Kubernetes quantities (`256Mi`, `1Gi`, `500m`) and the arithmetic of a memory raise.

Why its own module: the raise recommended to an on-call engineer must be explainable and tested
on plain numbers — max(observed peak × 1.25, the previous revision's limit), rounded up to a unit a
human would write (64Mi steps under 1Gi, 256Mi steps above) — and never lower than what runs now.
"""

from __future__ import annotations

import dataclasses
import math
import re

__all__ = ["MemoryRaise", "assess_memory_limit", "cpu_cores", "format_memory", "memory_bytes"]

MI = 1024**2
GI = 1024**3
_SUFFIX = {
    "Ki": 1024,
    "Mi": MI,
    "Gi": GI,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "Ei": 1024**6,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "m": 1e-3,
    "n": 1e-9,
    "u": 1e-6,
    "": 1,
}
_QUANTITY = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*([A-Za-z]{0,2})\s*$")


def _parse(value: str | int | float | None) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    match = _QUANTITY.match(str(value))
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def memory_bytes(value: str | int | float | None) -> float | None:
    """`256Mi` → 268435456.0; None or "" → None."""
    return _parse(value)


def cpu_cores(value: str | int | float | None) -> float | None:
    """`250m` → 0.25; `2` → 2.0."""
    return _parse(value)


def format_memory(n_bytes: float | None) -> str:
    """Bytes as the quantity a human writes: `512Mi`, `1536Mi`, `2Gi`."""
    if n_bytes is None:
        return ""
    if n_bytes >= GI and n_bytes % GI == 0:
        return f"{int(n_bytes // GI)}Gi"
    if n_bytes >= MI:
        return f"{math.ceil(n_bytes / MI)}Mi"
    return f"{math.ceil(n_bytes / 1024)}Ki"


def _round_up(n_bytes: float) -> float:
    step = 64 * MI if n_bytes <= GI else 256 * MI
    return math.ceil(n_bytes / step) * step


@dataclasses.dataclass(frozen=True)
class MemoryRaise:
    current: float | None  # bytes
    new: float
    observed_peak: float | None
    previous_limit: float | None
    explanation: str

    @property
    def new_quantity(self) -> str:
        return format_memory(self.new)


def assess_memory_limit(
    *,
    current: float | None,
    observed_peak: float | None,
    previous_limit: float | None,
    headroom: float = 1.25,
) -> MemoryRaise:
    """The new memory limit (bytes): max(peak × headroom, previous limit), rounded up, above current.

    An OOM-killed container's observed peak is at most its limit (it died there), so the peak alone
    understates the need; the previous revision's limit is what last ran without OOM kills.
    """
    candidates: list[tuple[float, str]] = []
    if observed_peak:
        candidates.append(
            (observed_peak * headroom, f"observed peak {format_memory(observed_peak)} × {headroom:g}")
        )
    if previous_limit:
        candidates.append((previous_limit, f"previous revision's limit {format_memory(previous_limit)}"))
    if current:
        floor = current * headroom
        if not candidates or max(c for c, _ in candidates) <= current:
            candidates.append(
                (floor, f"current limit {format_memory(current)} × {headroom:g} (nothing larger is known)")
            )
    if not candidates:
        raise ValueError("need at least one of current, observed_peak, previous_limit")
    value, why = max(candidates, key=lambda c: c[0])
    new = _round_up(value)
    parts = [f"{text} = {format_memory(v)}" for v, text in candidates]
    explanation = f"max({'; '.join(parts)}) → {why}, rounded up to {format_memory(new)}" + (
        f" (from {format_memory(current)})" if current else ""
    )
    return MemoryRaise(
        current=current,
        new=new,
        observed_peak=observed_peak,
        previous_limit=previous_limit,
        explanation=explanation,
    )
