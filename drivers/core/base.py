"""The device kinds the rest of the program sees, whatever protocol is underneath.

* :class:`ThermalOutput` -- a pad that can heat, cool, or both; a temperature setpoint range
  or discrete levels.
* :class:`Percussion` -- a massage gun; a speed range (per minute) and/or levels.
* :class:`TemperatureProbe` -- a skin-temperature probe.

Each reports its :class:`SafetyClass`: ``lease`` (the device turns itself off when the host goes
quiet) or ``host-timed`` (it relies on us; its own timer is set to its shortest value).

State is a frozen dataclass replaced on every change; ``register_callback`` returns the function
that unregisters. Drivers raise only :class:`DeviceError` subclasses, each with a sentence that
says what happened and what to do.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from typing_extensions import TypeIs

from profiles.errors import RelieveError

__all__ = [
    "AuthFailedError",
    "DeviceError",
    "DeviceInfo",
    "DeviceNotFoundError",
    "DeviceRefusedError",
    "DeviceTimeoutError",
    "NotConnectedError",
    "OutOfRangeError",
    "Percussion",
    "PercussionCaps",
    "PercussionState",
    "ProbeReading",
    "SafetyClass",
    "TemperatureProbe",
    "ThermalCaps",
    "ThermalOutput",
    "ThermalState",
    "is_percussion",
    "is_probe",
    "is_thermal",
]


class SafetyClass(enum.StrEnum):
    LEASE = "lease"  # the device turns its output off by itself when renewals stop
    HOST_TIMED = "host-timed"  # relies on the host; its own timer is set to the shortest value
    NONE = "none"  # no output at all (a temperature probe): nothing to turn off


# --- errors -------------------------------------------------------------------------------------


class DeviceError(RelieveError):
    """A device could not do what was asked. ``address`` names it."""

    def __init__(self, message: str, *, address: str | None = None) -> None:
        self.address = address
        super().__init__(message)


class DeviceNotFoundError(DeviceError):
    """Nothing answers at that address: it is off, out of range, or connected elsewhere."""


class NotConnectedError(DeviceError):
    """The link to the device is down."""


class AuthFailedError(DeviceError):
    """The device refused our authentication / init handshake."""


class OutOfRangeError(DeviceError):
    """A value outside what the device or a safety limit allows (``limit_id`` when a limit)."""

    def __init__(self, message: str, *, address: str | None = None, limit_id: str | None = None):
        self.limit_id = limit_id
        super().__init__(message, address=address)


class DeviceRefusedError(DeviceError):
    """The device answered a command with an error (``att_error`` names it)."""

    def __init__(self, message: str, *, address: str | None = None, att_error: int | None = None):
        self.att_error = att_error
        super().__init__(message, address=address)


class DeviceTimeoutError(DeviceError):
    """The device did not answer in time (after the retries)."""


# --- descriptions and state --------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    address: str
    name: str
    kind: Literal["thermal", "percussion", "probe"]
    driver: str  # e.g. "open-thermal", "theragun", "heating-mat", "sig-thermometer"
    safety_class: SafetyClass
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    battery: int | None = None  # percent


@dataclass(frozen=True)
class ThermalCaps:
    can_heat: bool
    can_cool: bool
    min_celsius: float | None = None  # setpoint range, when the pad takes a temperature
    max_celsius: float | None = None
    levels: tuple[float, ...] = ()  # °C of levels 1..n for a level-only pad (empty otherwise)
    max_lease_s: float | None = None  # lease pads; None for host-timed ones
    has_plate_sensor: bool = True
    timer_s: float | None = None  # host-timed: the device's own off-timer backstop, when set


@dataclass(frozen=True)
class ThermalState:
    connected: bool = False
    mode: Literal["off", "heat", "cold"] = "off"
    setpoint_celsius: float | None = None
    level: int | None = None
    plate_celsius: float | None = None  # measured, when the pad reports it
    lease_remaining_s: float | None = None
    # drivers.core.faults.Fault names, e.g. {"lease-expired"}; what each means: FAULT_POLICY
    faults: frozenset[str] = field(default_factory=frozenset)
    battery: int | None = None
    updated_at: float = 0.0  # clock time of the last telemetry

    @property
    def on(self) -> bool:
        return self.mode != "off"


@dataclass(frozen=True)
class PercussionCaps:
    min_rpm: int
    max_rpm: int
    levels: tuple[int, ...] = ()  # rpm of levels 1..n, when the gun has named levels
    max_lease_s: float | None = None
    run_cap_s: float | None = None  # the device's own run-time cap, when it has one
    timer_s: float | None = None  # host-timed: the device's own off-timer backstop, when set


@dataclass(frozen=True)
class PercussionState:
    connected: bool = False
    running: bool = False
    target_rpm: int | None = None
    measured_rpm: int | None = None
    load: float | None = None
    faults: frozenset[str] = field(default_factory=frozenset)  # as ThermalState.faults
    battery: int | None = None
    updated_at: float = 0.0


@dataclass(frozen=True)
class ProbeReading:
    celsius: float | None  # None when the probe reports NaN / not known
    at: float  # clock time


# --- the kinds -----------------------------------------------------------------------------------


@runtime_checkable
class _Device(Protocol):
    @property
    def info(self) -> DeviceInfo: ...

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None:
        """Connect (retrying), read the device's state, and send OFF first if anything is on."""
        ...

    async def disconnect(self) -> None:
        """Turn outputs OFF (best effort, bounded) and disconnect."""
        ...


@runtime_checkable
class ThermalOutput(_Device, Protocol):
    @property
    def caps(self) -> ThermalCaps: ...

    @property
    def state(self) -> ThermalState: ...

    async def heat(self, celsius: float) -> None:
        """Heat towards ``celsius`` (a level-only pad takes the hottest level not above it).

        The driver renews the lease (every ~1 s) until :meth:`off`; a host-timed device gets its
        own shortest timer.
        """
        ...

    async def cool(self, celsius: float) -> None: ...

    async def off(self) -> None:
        """Turn the output OFF and stop renewing. Idempotent."""
        ...

    def register_callback(self, callback: Callable[[ThermalState], None]) -> Callable[[], None]:
        """Call ``callback`` on every state change; returns the unregister function."""
        ...


@runtime_checkable
class Percussion(_Device, Protocol):
    @property
    def caps(self) -> PercussionCaps: ...

    @property
    def state(self) -> PercussionState: ...

    async def run(self, rpm: int, *, run_cap_s: float | None = None) -> None:
        """Run at ``rpm``; ``run_cap_s`` asks the device's own run-time cap (when it has one)."""
        ...

    async def stop(self) -> None:
        """Stop the gun. Idempotent."""
        ...

    def register_callback(
        self, callback: Callable[[PercussionState], None]
    ) -> Callable[[], None]: ...


@runtime_checkable
class TemperatureProbe(_Device, Protocol):
    @property
    def reading(self) -> ProbeReading | None: ...

    def register_callback(self, callback: Callable[[ProbeReading], None]) -> Callable[[], None]: ...


# ``isinstance`` on these protocols reads every property, and a driver may refuse to report its
# capabilities before it is connected: tell the kinds apart by what the device says it is.


def is_thermal(device: object) -> TypeIs[ThermalOutput]:
    """True for a heat / cold pad."""
    return _kind(device) == "thermal"


def is_percussion(device: object) -> TypeIs[Percussion]:
    """True for a massage gun."""
    return _kind(device) == "percussion"


def is_probe(device: object) -> TypeIs[TemperatureProbe]:
    """True for a temperature probe."""
    return _kind(device) == "probe"


def _kind(device: object) -> str | None:
    info = getattr(device, "info", None)
    return info.kind if isinstance(info, DeviceInfo) else None
