"""Relieve open profile: the percussion service (massage guns).

======  =========================  =================  ========================================
short   name                       properties         frame
======  =========================  =================  ========================================
0x0200  Percussion service         (primary service)
0x0201  Percussion Control Point   write (with resp.) :data:`PercussionCommand`
0x0202  Percussion State           read, notify       :class:`PercussionState`
0x0203  Percussion Measurement     read, notify       :class:`PercussionMeasurement`
0x0204  Percussion Capabilities    read               :class:`PercussionCapabilities`
======  =========================  =================  ========================================

Speed is in percussions per minute (ppm). Besides the lease, every run carries a device-side
run-time cap: the device stops by itself after ``run_cap_s`` seconds of continuous running,
however often the lease is renewed, and reports RUN_CAP_REACHED.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Self

from drivers.codecs.errors import EncodeError
from drivers.codecs.open_common import (
    DEFAULT_LEASE_MS,
    LEASE_MAX_MS,
    NO_FLAGS,
    PROFILE_VERSION,
    PROTOCOL,
    AttError,
    ClearFlags,
    FlaggedState,
    LeaseRenew,
    Opcode,
    OutputOff,
    StatusFlags,
    check_lease,
    dispatch_command,
    end_capabilities,
    expect_command,
    open_uuid,
    read_lease,
    rejecting,
)
from drivers.codecs.wire import BytesLike, Reader, check_range, decoding, u8, u16

__all__ = [
    "LOAD_NOT_KNOWN",
    "PERCUSSION_CAPABILITIES_UUID",
    "PERCUSSION_CONTROL_POINT_UUID",
    "PERCUSSION_MEASUREMENT_UUID",
    "PERCUSSION_SERVICE_UUID",
    "PERCUSSION_STATE_UUID",
    "PercussionCapabilities",
    "PercussionCommand",
    "PercussionFeatures",
    "PercussionMeasurement",
    "PercussionStart",
    "PercussionState",
    "decode_percussion_command",
]

PERCUSSION_SERVICE_UUID: Final = open_uuid(0x0200)
PERCUSSION_CONTROL_POINT_UUID: Final = open_uuid(0x0201)
PERCUSSION_STATE_UUID: Final = open_uuid(0x0202)
PERCUSSION_MEASUREMENT_UUID: Final = open_uuid(0x0203)
PERCUSSION_CAPABILITIES_UUID: Final = open_uuid(0x0204)

LOAD_NOT_KNOWN: Final = 0xFF
"""Load byte of a device that cannot sense load."""

_STATE = PROTOCOL + " percussion state"
_MEASUREMENT = PROTOCOL + " percussion measurement"
_CAPS = PROTOCOL + " percussion capabilities"
_START = PROTOCOL + " percussion START"
_U16_MAX: Final = 0xFFFF
_RUNNING_VALUES: Final = (0, 1)


class PercussionFeatures(enum.IntFlag, boundary=enum.KEEP):
    """Feature bits in :class:`PercussionCapabilities`."""

    LOAD_SENSING = 0x01
    """The device reports load (the force the user presses with) in the measurement."""


NO_FEATURES: Final = PercussionFeatures(0)


# --- control point ------------------------------------------------------------------------


@dataclass(frozen=True)
class PercussionStart:
    """START: ``02 speed_ppm(u16) lease_ms(u16) run_cap_s(u16)`` (7 bytes).

    Starts the motor (or changes the speed of a running one) and sets lease and run-time cap.
    The cap counts from the START that turned the motor on; a START while running replaces the
    cap value but does not restart that count.
    """

    speed_ppm: int
    run_cap_s: int
    lease_ms: int = DEFAULT_LEASE_MS

    def __post_init__(self) -> None:
        check_range(_START, "speed_ppm", self.speed_ppm, 1, _U16_MAX, unit="ppm")
        check_range(_START, "run_cap_s", self.run_cap_s, 1, _U16_MAX, unit="s")
        check_lease(self.lease_ms)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`CommandRejectedError` with the ATT error to answer."""
        reader = expect_command(data, Opcode.START, 7)
        speed = reader.u16("speed_ppm")
        lease_ms = read_lease(reader)
        run_cap = reader.u16("run_cap_s")
        with rejecting():
            return cls(speed_ppm=speed, run_cap_s=run_cap, lease_ms=lease_ms)

    def __bytes__(self) -> bytes:
        return u8(Opcode.START) + u16(self.speed_ppm) + u16(self.lease_ms) + u16(self.run_cap_s)


PercussionCommand = OutputOff | PercussionStart | LeaseRenew | ClearFlags
"""Everything a host writes to the Percussion Control Point (OutputOff = STOP)."""


def decode_percussion_command(data: BytesLike) -> PercussionCommand:
    """Decode a Percussion Control Point write (device side).

    Raises :class:`CommandRejectedError`; answer the write with its ``att_error``.
    """
    return dispatch_command(data, PercussionStart.from_bytes)


# --- state and measurement ----------------------------------------------------------------


@dataclass(frozen=True)
class PercussionState(FlaggedState):
    """Percussion State (11 bytes)::

        running(u8 0/1) target_ppm(u16) lease_remaining_ms(u16) run_time_s(u16)
        run_cap_s(u16) flags(u16)

    While stopped, target, lease, run time and cap are all 0. Notified whenever running,
    target speed or flags change.
    """

    running: bool = False
    target_ppm: int = 0
    lease_remaining_ms: int = 0
    run_time_s: int = 0
    run_cap_s: int = 0
    flags: StatusFlags = NO_FLAGS

    def __post_init__(self) -> None:
        check_range(_STATE, "target_ppm", self.target_ppm, 0, _U16_MAX, unit="ppm")
        check_range(_STATE, "lease_remaining_ms", self.lease_remaining_ms, 0, LEASE_MAX_MS)
        check_range(_STATE, "run_time_s", self.run_time_s, 0, _U16_MAX, unit="s")
        check_range(_STATE, "run_cap_s", self.run_cap_s, 0, _U16_MAX, unit="s")
        check_range(_STATE, "flags", int(self.flags), 0, _U16_MAX)
        if self.running:
            if not self.target_ppm or not self.run_cap_s:
                raise EncodeError(_STATE, "running", "a running motor needs a speed and a cap")
        elif self.target_ppm or self.lease_remaining_ms or self.run_time_s or self.run_cap_s:
            raise EncodeError(_STATE, "running", "a stopped motor has no speed, lease or cap")

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        reader = Reader(data, _STATE)
        running = reader.u8("running")
        target = reader.u16("target_ppm")
        lease = reader.u16("lease_remaining_ms")
        run_time = reader.u16("run_time_s")
        run_cap = reader.u16("run_cap_s")
        flags = StatusFlags(reader.u16("flags"))
        reader.end()
        with decoding(_STATE):
            check_range(_STATE, "running", running, *_RUNNING_VALUES)
            return cls(bool(running), target, lease, run_time, run_cap, flags)

    def __bytes__(self) -> bytes:
        return (
            u8(int(self.running))
            + u16(self.target_ppm)
            + u16(self.lease_remaining_ms)
            + u16(self.run_time_s)
            + u16(self.run_cap_s)
            + u16(self.flags)
        )


@dataclass(frozen=True)
class PercussionMeasurement:
    """Percussion Measurement: ``measured_ppm(u16) load_percent(u8)`` (3 bytes).

    Load is the pressing force in percent of the device's rated maximum, 0xFF = not known.
    Notified at least every TELEMETRY_INTERVAL_S while running and notifications are enabled.
    """

    measured_ppm: int
    load_percent: int | None = None

    def __post_init__(self) -> None:
        check_range(_MEASUREMENT, "measured_ppm", self.measured_ppm, 0, _U16_MAX, unit="ppm")
        if self.load_percent is not None:
            check_range(_MEASUREMENT, "load_percent", self.load_percent, 0, 100, unit="%")

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        reader = Reader(data, _MEASUREMENT)
        speed = reader.u16("measured_ppm")
        load = reader.u8("load_percent")
        reader.end()
        with decoding(_MEASUREMENT):
            return cls(speed, None if load == LOAD_NOT_KNOWN else load)

    def __bytes__(self) -> bytes:
        load = LOAD_NOT_KNOWN if self.load_percent is None else self.load_percent
        return u16(self.measured_ppm) + u8(load)


@dataclass(frozen=True)
class PercussionCapabilities:
    """Percussion Capabilities (10 bytes)::

    version(u8) features(u8) min_ppm(u16) max_ppm(u16) max_lease_ms(u16) max_run_cap_s(u16)
    """

    min_ppm: int
    max_ppm: int
    max_run_cap_s: int
    max_lease_ms: int = LEASE_MAX_MS
    features: PercussionFeatures = NO_FEATURES
    version: int = PROFILE_VERSION

    def __post_init__(self) -> None:
        check_range(_CAPS, "version", self.version, 1, 0xFF)
        check_range(_CAPS, "features", int(self.features), 0, 0xFF)
        check_range(_CAPS, "min_ppm", self.min_ppm, 1, _U16_MAX, unit="ppm")
        check_range(_CAPS, "max_ppm", self.max_ppm, self.min_ppm, _U16_MAX, unit="ppm")
        check_range(_CAPS, "max_lease_ms", self.max_lease_ms, 1, LEASE_MAX_MS, unit="ms")
        check_range(_CAPS, "max_run_cap_s", self.max_run_cap_s, 1, _U16_MAX, unit="s")

    def refusal(self, command: PercussionStart) -> AttError | None:
        """The ATT error a device with these capabilities answers ``command`` with, if any."""
        if not self.min_ppm <= command.speed_ppm <= self.max_ppm:
            return AttError.VALUE_OUT_OF_RANGE
        if command.run_cap_s > self.max_run_cap_s:
            return AttError.VALUE_OUT_OF_RANGE
        return None

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`.

        A version above 1 may append fields; they are ignored.
        """
        reader = Reader(data, _CAPS)
        version = reader.u8("version")
        features = PercussionFeatures(reader.u8("features"))
        min_ppm = reader.u16("min_ppm")
        max_ppm = reader.u16("max_ppm")
        max_lease = reader.u16("max_lease_ms")
        max_cap = reader.u16("max_run_cap_s")
        end_capabilities(reader, version)
        with decoding(_CAPS):
            return cls(min_ppm, max_ppm, max_cap, max_lease, features, version)

    def __bytes__(self) -> bytes:
        return (
            u8(self.version)
            + u8(self.features)
            + u16(self.min_ppm)
            + u16(self.max_ppm)
            + u16(self.max_lease_ms)
            + u16(self.max_run_cap_s)
        )
