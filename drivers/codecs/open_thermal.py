"""Relieve open profile: the thermal service (heat pads, cold pads, contrast pads).

Characteristics (UUIDs from :func:`~drivers.codecs.open_common.open_uuid`):

======  ====================  ===================  =====================================
short   name                  properties           frame
======  ====================  ===================  =====================================
0x0100  Thermal service       (primary service)
0x0101  Thermal Control Point write (with resp.)   :data:`ThermalCommand`
0x0102  Thermal State         read, notify         :class:`ThermalState`
0x0103  Plate Temperature     read, notify         :class:`PlateTemperature`
0x0104  Thermal Capabilities  read                 :class:`ThermalCapabilities`
======  ====================  ===================  =====================================

The profile carries no skin-side temperature estimate: the device measures its plate; the
skin side is measured by a separate SIG thermometer (probe) or estimated by the host.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Self

from drivers.codecs.enums import OpenIntEnum
from drivers.codecs.errors import DecodeError, EncodeError
from drivers.codecs.open_common import (
    DEFAULT_LEASE_MS,
    LEASE_MAX_MS,
    NO_FLAGS,
    PROFILE_VERSION,
    PROTOCOL,
    AttError,
    ClearFlags,
    CommandRejectedError,
    FlaggedState,
    LeaseRenew,
    Opcode,
    OutputOff,
    StatusFlags,
    celsius_to_centi,
    centi_to_celsius,
    check_centi,
    check_lease,
    dispatch_command,
    end_capabilities,
    expect_command,
    open_uuid,
    read_lease,
    rejecting,
)
from drivers.codecs.wire import (
    BytesLike,
    Reader,
    check_range,
    decoding,
    optional_s16,
    read_single,
    s16,
    u8,
    u16,
)

__all__ = [
    "PLATE_TEMPERATURE_UUID",
    "THERMAL_CAPABILITIES_UUID",
    "THERMAL_CONTROL_POINT_UUID",
    "THERMAL_SERVICE_UUID",
    "THERMAL_STATE_UUID",
    "PlateTemperature",
    "ThermalCapabilities",
    "ThermalCommand",
    "ThermalFeatures",
    "ThermalMode",
    "ThermalStart",
    "ThermalState",
    "decode_thermal_command",
]

THERMAL_SERVICE_UUID: Final = open_uuid(0x0100)
THERMAL_CONTROL_POINT_UUID: Final = open_uuid(0x0101)
THERMAL_STATE_UUID: Final = open_uuid(0x0102)
PLATE_TEMPERATURE_UUID: Final = open_uuid(0x0103)
THERMAL_CAPABILITIES_UUID: Final = open_uuid(0x0104)

_STATE = PROTOCOL + " thermal state"
_PLATE = PROTOCOL + " plate temperature"
_CAPS = PROTOCOL + " thermal capabilities"
_START = PROTOCOL + " thermal START"


class ThermalMode(OpenIntEnum):
    """Output mode. The output is ON exactly when the mode is not OFF."""

    OFF = 0
    HEAT = 1
    COLD = 2


class ThermalFeatures(enum.IntFlag, boundary=enum.KEEP):
    """Feature bits in :class:`ThermalCapabilities`."""

    CAN_HEAT = 0x01
    CAN_COOL = 0x02


# --- control point ------------------------------------------------------------------------


@dataclass(frozen=True)
class ThermalStart:
    """START: ``02 mode(u8) setpoint(s16, 0.01 degC) lease_ms(u16)`` (6 bytes).

    Turns the output ON (or changes mode/setpoint of a running output) and sets its lease.
    """

    mode: ThermalMode
    setpoint_centi: int
    lease_ms: int = DEFAULT_LEASE_MS

    def __post_init__(self) -> None:
        if self.mode not in (ThermalMode.HEAT, ThermalMode.COLD):
            raise EncodeError(_START, "mode", f"{self.mode!r} is not HEAT or COLD")
        check_centi(_START, "setpoint", self.setpoint_centi)
        check_lease(self.lease_ms)

    @classmethod
    def heat(cls, celsius: float, lease_ms: int = DEFAULT_LEASE_MS) -> Self:
        """Heat to ``celsius`` (rounded to 0.01 degC)."""
        return cls(ThermalMode.HEAT, celsius_to_centi(celsius), lease_ms)

    @classmethod
    def cold(cls, celsius: float, lease_ms: int = DEFAULT_LEASE_MS) -> Self:
        """Cool to ``celsius`` (rounded to 0.01 degC)."""
        return cls(ThermalMode.COLD, celsius_to_centi(celsius), lease_ms)

    @property
    def setpoint_c(self) -> float:
        """The setpoint in degrees Celsius."""
        return centi_to_celsius(self.setpoint_centi)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`CommandRejectedError` with the ATT error to answer."""
        reader = expect_command(data, Opcode.START, 6)
        mode = ThermalMode(reader.u8("mode"))
        if mode not in (ThermalMode.HEAT, ThermalMode.COLD):
            raise CommandRejectedError(
                AttError.VALUE_OUT_OF_RANGE, "mode", f"START needs HEAT or COLD, got {mode.name}"
            )
        setpoint = reader.optional_s16("setpoint")
        if setpoint is None:
            raise CommandRejectedError(
                AttError.VALUE_OUT_OF_RANGE, "setpoint", "0x8000 (not known)"
            )
        lease_ms = read_lease(reader)
        with rejecting():
            return cls(mode, setpoint, lease_ms)

    def __bytes__(self) -> bytes:
        return u8(Opcode.START) + u8(self.mode) + s16(self.setpoint_centi) + u16(self.lease_ms)


ThermalCommand = OutputOff | ThermalStart | LeaseRenew | ClearFlags
"""Everything a host writes to the Thermal Control Point."""


def decode_thermal_command(data: BytesLike) -> ThermalCommand:
    """Decode a Thermal Control Point write (device side).

    Raises :class:`CommandRejectedError`; answer the write with its ``att_error``.
    """
    return dispatch_command(data, ThermalStart.from_bytes)


# --- state --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThermalState(FlaggedState):
    """Thermal State: ``mode(u8) setpoint(s16) lease_remaining_ms(u16) flags(u16)`` (7 bytes).

    The snapshot a host reads on (re)connect; notified whenever mode, setpoint or flags change.
    While OFF the setpoint is 0x8000 (None) and the remaining lease 0.
    """

    mode: ThermalMode = ThermalMode.OFF
    setpoint_centi: int | None = None
    lease_remaining_ms: int = 0
    flags: StatusFlags = NO_FLAGS

    def __post_init__(self) -> None:
        check_range(_STATE, "mode", int(self.mode), 0, 0xFF)
        if self.setpoint_centi is not None:
            check_centi(_STATE, "setpoint", self.setpoint_centi)
        check_range(_STATE, "lease_remaining_ms", self.lease_remaining_ms, 0, LEASE_MAX_MS)
        check_range(_STATE, "flags", int(self.flags), 0, 0xFFFF)
        if self.mode == ThermalMode.OFF:
            if self.setpoint_centi is not None or self.lease_remaining_ms:
                raise EncodeError(_STATE, "mode", "OFF carries no setpoint and no lease")
        elif self.mode in (ThermalMode.HEAT, ThermalMode.COLD) and self.setpoint_centi is None:
            raise EncodeError(_STATE, "setpoint", f"{self.mode.name} needs a setpoint")

    @property
    def is_on(self) -> bool:
        """True when the output is ON (any mode but OFF, including unknown ones)."""
        return self.mode != ThermalMode.OFF

    @property
    def setpoint_c(self) -> float | None:
        """The setpoint in degrees Celsius, or None while OFF."""
        return None if self.setpoint_centi is None else centi_to_celsius(self.setpoint_centi)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        reader = Reader(data, _STATE)
        mode = ThermalMode(reader.u8("mode"))
        setpoint = reader.optional_s16("setpoint")
        lease = reader.u16("lease_remaining_ms")
        flags = StatusFlags(reader.u16("flags"))
        reader.end()
        with decoding(_STATE):
            return cls(mode, setpoint, lease, flags)

    def __bytes__(self) -> bytes:
        return (
            u8(self.mode)
            + optional_s16(self.setpoint_centi)
            + u16(self.lease_remaining_ms)
            + u16(self.flags)
        )


@dataclass(frozen=True)
class PlateTemperature:
    """Plate Temperature: ``s16`` in 0.01 degC, 0x8000 = not known (sensor fault).

    Notified at least every TELEMETRY_INTERVAL_S while notifications are enabled.
    """

    centi: int | None

    def __post_init__(self) -> None:
        if self.centi is not None:
            check_centi(_PLATE, "temperature", self.centi)

    @classmethod
    def from_celsius(cls, celsius: float | None) -> Self:
        """From degrees Celsius (None = not known)."""
        return cls(None if celsius is None else celsius_to_centi(celsius))

    @property
    def celsius(self) -> float | None:
        """Degrees Celsius, or None when not known."""
        return None if self.centi is None else centi_to_celsius(self.centi)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        return cls(read_single(data, _PLATE, Reader.optional_s16, "temperature"))

    def __bytes__(self) -> bytes:
        return optional_s16(self.centi)


@dataclass(frozen=True)
class ThermalCapabilities:
    """Thermal Capabilities (12 bytes)::

        version(u8) features(u8) heat_min(s16) heat_max(s16) cold_min(s16) cold_max(s16)
        max_lease_ms(u16)

    A range is None (both ends 0x8000, feature bit clear) when the device lacks that mode.
    """

    heat_range_centi: tuple[int, int] | None
    cold_range_centi: tuple[int, int] | None
    max_lease_ms: int = LEASE_MAX_MS
    version: int = PROFILE_VERSION

    def __post_init__(self) -> None:
        check_range(_CAPS, "version", self.version, 1, 0xFF)
        check_range(_CAPS, "max_lease_ms", self.max_lease_ms, 1, LEASE_MAX_MS, unit="ms")
        if self.heat_range_centi is None and self.cold_range_centi is None:
            raise EncodeError(_CAPS, "features", "a thermal device must heat, cool, or both")
        for name, span in (("heat", self.heat_range_centi), ("cold", self.cold_range_centi)):
            if span is None:
                continue
            low, high = span
            check_centi(_CAPS, f"{name}_min", low)
            check_centi(_CAPS, f"{name}_max", high, minimum=low)

    @classmethod
    def from_celsius(
        cls,
        heat: tuple[float, float] | None,
        cold: tuple[float, float] | None,
        max_lease_ms: int = LEASE_MAX_MS,
    ) -> Self:
        """Build from setpoint ranges in degrees Celsius."""
        heat_c = None if heat is None else (celsius_to_centi(heat[0]), celsius_to_centi(heat[1]))
        cold_c = None if cold is None else (celsius_to_centi(cold[0]), celsius_to_centi(cold[1]))
        return cls(heat_c, cold_c, max_lease_ms)

    @property
    def features(self) -> ThermalFeatures:
        """The feature bits this device advertises."""
        features = ThermalFeatures(0)
        if self.heat_range_centi is not None:
            features |= ThermalFeatures.CAN_HEAT
        if self.cold_range_centi is not None:
            features |= ThermalFeatures.CAN_COOL
        return features

    @property
    def can_heat(self) -> bool:
        """True when the device can heat."""
        return self.heat_range_centi is not None

    @property
    def can_cool(self) -> bool:
        """True when the device can cool."""
        return self.cold_range_centi is not None

    def refusal(self, command: ThermalStart) -> AttError | None:
        """The ATT error a device with these capabilities answers ``command`` with, if any."""
        span = self.heat_range_centi if command.mode == ThermalMode.HEAT else self.cold_range_centi
        if span is None:
            return AttError.MODE_NOT_SUPPORTED
        if not span[0] <= command.setpoint_centi <= span[1]:
            return AttError.VALUE_OUT_OF_RANGE
        return None

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`.

        A version above 1 may append fields; they are ignored.
        """
        reader = Reader(data, _CAPS)
        version = reader.u8("version")
        features = ThermalFeatures(reader.u8("features"))
        spans: list[tuple[int, int] | None] = []
        for name, bit in (("heat", ThermalFeatures.CAN_HEAT), ("cold", ThermalFeatures.CAN_COOL)):
            low = reader.optional_s16(f"{name}_min")
            high = reader.optional_s16(f"{name}_max")
            if bit in features:
                if low is None or high is None:
                    raise DecodeError(_CAPS, f"{name}_min", f"{name} is supported but 0x8000")
                spans.append((low, high))
            else:
                spans.append(None)
        max_lease = reader.u16("max_lease_ms")
        end_capabilities(reader, version)
        with decoding(_CAPS):
            return cls(spans[0], spans[1], max_lease, version)

    def __bytes__(self) -> bytes:
        out = u8(self.version) + u8(self.features)
        for span in (self.heat_range_centi, self.cold_range_centi):
            low, high = (None, None) if span is None else span
            out += optional_s16(low) + optional_s16(high)
        return out + u16(self.max_lease_ms)
