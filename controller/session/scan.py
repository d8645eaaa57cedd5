"""Scanning for devices for any front end: what is in range, on the radio a request names.

* :func:`scan_devices` opens the radio of a :class:`~controller.session.service.SessionRequest`
  (an in-process simulated world, a simulator server, or the operating system's adapter),
  listens for ``timeout_s`` seconds of the clock given (a ``VirtualClock`` in tests) and
  returns a :class:`ScanReport`; ``on_progress`` hears how far the scan is (0 to 1) on the way.
* :func:`scan_radio` does the same on a radio that is already open.
* :func:`role_problem` says, in one sentence, why a device (or ``manual``) cannot play a role,
  judged from what a scan tells: the device's kind.

A scan only listens: nothing is connected and nothing is switched on.

Discovery (:func:`drivers.core.discovery.scan`) listens for a span of real time and cannot
say how far it is, so the progress comes from the clock while it listens. The radio is listened
to for the real-time length of the clock's ``timeout_s`` (the same under a real clock), but at
least :data:`LISTEN_FLOOR_S` real seconds under a fast or virtual clock; a virtual clock does not
run past a scan still listening (``Clock.hold``), as a real one would not outrun the radio.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.session.binding import ROLES
from controller.session.simulation import Radio, open_radio
from drivers.core.backend import BleBackend, bluetooth_unavailable
from drivers.core.classify import Kind
from drivers.core.clock import Clock
from drivers.core.discovery import ScanResult
from profiles.errors import RelieveError

if TYPE_CHECKING:
    from controller.session.service import SessionRequest

__all__ = [
    "LISTEN_FLOOR_S",
    "MANUAL",
    "PROGRESS_STEPS",
    "ScanError",
    "ScanReport",
    "role_problem",
    "scan_devices",
    "scan_radio",
]

# Real seconds the radio is listened to at least, however fast the clock runs: the simulated
# radio reports every advertiser within milliseconds of a scan starting, even over a socket.
LISTEN_FLOOR_S = 0.25
# How many times a scan reports its progress (evenly over its time), besides 0 at the start.
PROGRESS_STEPS = 20

MANUAL = "manual"
"""The value of a role with no device behind it: a passive pack, your own gun."""

_ROLE_KIND: Mapping[str, Kind] = {
    "heat": "thermal",
    "cold": "thermal",
    "gun": "percussion",
    "probe": "probe",
}
_ROLE_DEVICE = {"heat": "heat pad", "cold": "cold pad", "gun": "massage gun", "probe": "skin probe"}
_KIND_WORDS: Mapping[Kind, str] = {
    "thermal": "heat or cold pad",
    "percussion": "massage gun",
    "probe": "skin probe",
}


class ScanError(RelieveError):
    """A scan was asked for in a way that cannot work (its length)."""


@dataclass(frozen=True)
class ScanReport:
    """What one scan heard.

    ``results``: every device heard, strongest signal first (``drivable`` keeps those relieve
    can drive); ``simulated``: whether they are simulated devices; ``radio``: the radio's
    description ("the simulator at unix:/run/relieve.sock"); ``seconds``: how long it listened,
    in clock seconds.
    """

    results: tuple[ScanResult, ...]
    simulated: bool
    radio: str
    seconds: float

    @property
    def drivable(self) -> tuple[ScanResult, ...]:
        """The devices relieve has a driver for."""
        return tuple(r for r in self.results if r.supported)

    def find(self, address: str) -> ScanResult | None:
        """The device heard at ``address`` (any case), or None."""
        wanted = address.strip().upper()
        return next((r for r in self.results if r.address == wanted), None)


def role_problem(
    role: str,
    value: str,
    kind: Kind | None = None,
    *,
    drivable: bool = True,
    name: str | None = None,
) -> str | None:
    """Why ``value`` cannot play ``role``, as one sentence; None when it can.

    ``value`` is a device address or ``manual``; ``kind`` is what a scan says the device is
    (None: not recognised) and ``drivable`` whether relieve has a driver for it; ``name`` (its
    advertised name) makes the sentence easier to read. ``manual`` fits heat, cold and gun (a
    passive pack, your own gun), never the probe: relieve reads the skin temperature from it.
    One thermal pad may play both heat and cold.
    """
    if role not in _ROLE_KIND:
        return f"{role!r} is not a role; the roles are {', '.join(ROLES)}."
    wanted = _ROLE_DEVICE[role]
    if value == MANUAL:
        if role == "probe":
            return (
                "A probe cannot be manual, as relieve has to read the skin temperature from it; "
                "choose a skin probe, or leave the probe to be found at the start."
            )
        return None
    label = value.strip().upper() if not name else f"{name} ({value.strip().upper()})"
    if kind is None:
        return f"{label} is not a device relieve knows; choose a {wanted} for {role}."
    if kind != _ROLE_KIND[role]:
        return f"{label} is a {_KIND_WORDS[kind]}, not a {wanted}; choose a {wanted} for {role}."
    if not drivable:
        return f"relieve cannot drive {label}; choose another {wanted} for {role}."
    return None


async def scan_devices(
    request: SessionRequest,
    *,
    timeout_s: float,
    clock: Clock | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> ScanReport:
    """Listen for ``timeout_s`` clock seconds on the radio ``request`` names.

    ``clock``: the clock the scan's time runs on; None: the request's (its own clock, or real
    time, or faster for simulated devices: ``--speed``). An in-process simulated world
    (``request.simulate``, of ``request.world``'s devices) lives only as long as the scan.
    Problems with the radio (no adapter, a simulator that does not answer, a bad simulator
    spec) are raised as :class:`~profiles.errors.RelieveError` with one sentence.
    """
    from controller.session.service import clock_for  # the service loads the whole engine

    _check_length(timeout_s)
    used = clock if clock is not None else clock_for(request)
    async with open_radio(
        simulate=request.simulate,
        simulator=request.simulator,
        clock=used,
        devices=request.world,
    ) as radio:
        return await scan_radio(radio, timeout_s=timeout_s, clock=used, on_progress=on_progress)


async def scan_radio(
    radio: Radio,
    *,
    timeout_s: float,
    clock: Clock,
    on_progress: Callable[[float], None] | None = None,
) -> ScanReport:
    """:func:`scan_devices` on a radio already open."""
    _check_length(timeout_s)
    report = on_progress if on_progress is not None else _ignore
    listen_s = _listen_s(timeout_s, clock.speed)
    start = clock.now()
    report(0.0)
    heard = asyncio.create_task(_listen(radio.backend, listen_s))
    clock.hold(heard)
    ticker = asyncio.create_task(_tick(clock, start, timeout_s, report))
    tasks = (heard, ticker)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                await task  # raises the first problem: the radio's or a progress listener's
        results = heard.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    report(1.0)
    return ScanReport(tuple(results), radio.simulated, radio.description, timeout_s)


def _check_length(timeout_s: float) -> None:
    # `not 0 < x` refuses NaN too
    if not 0 < timeout_s < math.inf:
        raise ScanError(
            f"A scan lasts a positive number of seconds, not {timeout_s:g}; give one such as 5."
        )


def _listen_s(timeout_s: float, speed: float) -> float:
    """Real seconds to listen for a scan of ``timeout_s`` clock seconds at ``speed``."""
    return max(timeout_s / speed, min(LISTEN_FLOOR_S, timeout_s))


async def _listen(backend: BleBackend, seconds: float) -> list[ScanResult]:
    from drivers.core import discovery

    try:
        return await discovery.scan(backend, timeout_s=seconds)
    except OSError as exc:  # no system Bluetooth service to talk to at all
        raise bluetooth_unavailable(exc, backend) from exc


async def _tick(
    clock: Clock, start: float, timeout_s: float, report: Callable[[float], None]
) -> None:
    for step in range(1, PROGRESS_STEPS + 1):
        await clock.sleep_until(start + timeout_s * step / PROGRESS_STEPS)
        if step < PROGRESS_STEPS:
            report(step / PROGRESS_STEPS)  # 1.0 only once the results are in


def _ignore(fraction: float) -> None:
    del fraction
