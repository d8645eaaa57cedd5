"""Checks a driver makes before it sends a command: hard safety limits, then the device's range.

Every check refuses (raises :class:`~drivers.core.base.OutOfRangeError`), never clamps. A broken
safety limit names its ID (``limit_id``: H1, C4, H4, M1); a value outside what the device can
do has no limit ID. Pure: no I/O.
"""

from __future__ import annotations

import math

from drivers.core.base import OutOfRangeError
from profiles.limits import HARD, Limits, Violation

__all__ = [
    "check_cool",
    "check_heat",
    "check_heat_limit",
    "check_lease_s",
    "check_rpm",
    "check_run_cap_s",
]


def _finite(value: float, what: str, address: str | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OutOfRangeError(f"{value!r} is not a {what}; give a number.", address=address)


def _refuse(violation: Violation | None, address: str | None) -> None:
    """Raise the broken hard limit, if any, naming its ID."""
    if violation is not None:
        raise OutOfRangeError(f"{violation}.", address=address, limit_id=violation.limit_id)


def _in_span(
    celsius: float,
    span: tuple[float, float] | None,
    *,
    verb: str,
    pad: str,
    label: str,
    address: str | None,
) -> None:
    """A setpoint the pad can ``verb`` to ("heat", "cool"); else use a ``pad`` pad."""
    if span is None:
        raise OutOfRangeError(f"{label} cannot {verb}; use a {pad} pad.", address=address)
    low, high = span
    if not low <= celsius <= high:
        raise OutOfRangeError(
            f"{label} {verb}s to {low:g}-{high:g} °C, not {celsius:g} °C; pick a setpoint in "
            "that range.",
            address=address,
        )


def check_heat_limit(celsius: float, *, address: str | None = None, limits: Limits = HARD) -> None:
    """A heat setpoint no hotter than the H1 ceiling for short steps (45 °C)."""
    _finite(celsius, "temperature", address)
    _refuse(limits.check_heat_celsius(celsius, 0.0), address)


def check_heat(
    celsius: float,
    heat_range: tuple[float, float] | None,
    *,
    label: str,
    address: str | None = None,
    limits: Limits = HARD,
) -> None:
    """A heat setpoint: at most the H1 short-step ceiling, and inside the pad's heat range."""
    check_heat_limit(celsius, address=address, limits=limits)
    _in_span(celsius, heat_range, verb="heat", pad="heat", label=label, address=address)


def check_cool(
    celsius: float,
    cold_range: tuple[float, float] | None,
    *,
    label: str,
    address: str | None = None,
    limits: Limits = HARD,
) -> None:
    """A cold setpoint: not below the C4 plate floor, and inside the pad's cold range."""
    _finite(celsius, "temperature", address)
    _refuse(limits.check_cold_plate(celsius), address)
    _in_span(celsius, cold_range, verb="cool", pad="cold", label=label, address=address)


def check_lease_s(lease_s: float, *, address: str | None = None, limits: Limits = HARD) -> int:
    """A lease length (seconds) no longer than H4 allows; returns it in whole milliseconds."""
    _finite(lease_s, "lease length", address)
    if lease_s > limits.lease_max_s:
        raise OutOfRangeError(
            f"A lease of {lease_s:g} s is longer than the {limits.lease_max_s:g} s every ON may "
            f"carry; use {limits.lease_max_s:g} s or less (H4).",
            address=address,
            limit_id="H4",
        )
    lease_ms = round(lease_s * 1000)
    if lease_ms < 1:
        raise OutOfRangeError(
            f"A lease of {lease_s:g} s is too short; use at least 0.001 s.", address=address
        )
    return lease_ms


def check_rpm(rpm: int, low: int, high: int, *, label: str, address: str | None = None) -> None:
    """A speed (per minute) inside the gun's range."""
    if isinstance(rpm, bool) or not isinstance(rpm, int):
        raise OutOfRangeError(f"{rpm!r} is not a speed; give whole rpm.", address=address)
    if not low <= rpm <= high:
        raise OutOfRangeError(
            f"{label} runs at {low}-{high} per minute, not {rpm}; pick a speed in that range.",
            address=address,
        )


def check_run_cap_s(run_cap_s: float, *, address: str | None = None, limits: Limits = HARD) -> None:
    """A massage run no longer than the M1 extended session (18 minutes)."""
    _finite(run_cap_s, "run time", address)
    if run_cap_s > limits.massage_extended_max_s:
        raise OutOfRangeError(
            f"A massage run of {run_cap_s:g} s is longer than the "
            f"{limits.massage_extended_max_s / 60:g} minutes one session may last; "
            "run for less (M1).",
            address=address,
            limit_id="M1",
        )
    if run_cap_s <= 0:
        raise OutOfRangeError(f"A run time of {run_cap_s:g} s is not a run.", address=address)
