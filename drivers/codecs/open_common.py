"""Relieve open profile: the parts both services share.

UUIDs, lease constants, ATT application error codes, status flags, control-point opcodes and
the command frames that look the same in both services (output off, lease renewal, clear
flags). The full specification is docs/gatt-profile.md; :mod:`drivers.codecs.open_profile`
re-exports everything a driver or simulator needs.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Self, TypeVar

from drivers.codecs.enums import OpenIntEnum
from drivers.codecs.errors import CodecError, DecodeError, EncodeError
from drivers.codecs.wire import (
    NOT_KNOWN_S16,
    S16_MAX,
    BytesLike,
    Reader,
    check_range,
    u8,
    u16,
)

__all__ = [
    "BASE_UUID",
    "DEFAULT_LEASE_MS",
    "EVENT_FLAGS",
    "FAULT_FLAGS",
    "LEASE_MAX_MS",
    "MAX_ADV_NAME_BYTES",
    "NOT_KNOWN_S16",
    "NO_FLAGS",
    "PROFILE_VERSION",
    "PROTOCOL",
    "RENEW_INTERVAL_S",
    "TELEMETRY_INTERVAL_S",
    "AttError",
    "ClearFlags",
    "CommandRejectedError",
    "FlaggedState",
    "LeaseRenew",
    "Opcode",
    "OutputOff",
    "StatusFlags",
    "celsius_to_centi",
    "centi_to_celsius",
    "check_centi",
    "check_lease",
    "describe_att_error",
    "dispatch_command",
    "end_capabilities",
    "expect_command",
    "grant_lease",
    "open_uuid",
    "read_lease",
    "read_opcode",
    "rejecting",
]

_StartT = TypeVar("_StartT")

PROTOCOL: Final = "open profile"
"""Protocol name used in error messages."""

PROFILE_VERSION: Final = 1
"""Version byte in both capability characteristics; bump it for incompatible layout changes."""

# --- UUIDs ---------------------------------------------------------------------------------

BASE_UUID: Final = "5245xxxx-4c56-4f50-8e4c-72656c696576"
"""Every open-profile UUID is this base with ``xxxx`` replaced by a 16-bit short id.

Random-looking but readable: ``52 45`` is "RE", ``4c 56`` "LV", ``4f 50`` "OP" (a version-4
nibble), ``8e 4c`` carries the RFC 4122 variant bits, and the node ``72656c696576`` is "reliev".
"""


def open_uuid(short_id: int) -> str:
    """The full 128-bit UUID string (lower case, as bleak prints it) for a short id."""
    check_range(PROTOCOL, "short UUID id", short_id, 0, 0xFFFF)
    return BASE_UUID.replace("xxxx", f"{short_id:04x}")


# --- timing and lease ---------------------------------------------------------------------

LEASE_MAX_MS: Final = 5000
"""No lease may exceed 5 s (H4 in docs/safety.md); longer requests get LEASE_TOO_LONG."""

DEFAULT_LEASE_MS: Final = 3000
"""Lease the host asks for: with renewals every RENEW_INTERVAL_S, two may be lost in a row."""

RENEW_INTERVAL_S: Final = 1.0
"""How often the host renews a lease (S2 in docs/safety.md: heartbeat <= 1 s)."""

TELEMETRY_INTERVAL_S: Final = 1.0
"""Devices notify measurements (plate temperature, measured speed) at least this often."""

MAX_ADV_NAME_BYTES: Final = 8
"""Longest local name that fits in the 31-byte advertising data beside the flags (3 bytes)
and a complete 128-bit service UUID list (18 bytes): 31 - 3 - 18 - 2 (AD header) = 8."""


def grant_lease(requested_ms: int, device_max_ms: int) -> int:
    """The lease a device grants: the request, cut down to the device's own maximum.

    Requests above :data:`LEASE_MAX_MS` never get here: they are refused (LEASE_TOO_LONG).
    """
    check_range(PROTOCOL, "lease_ms", requested_ms, 1, LEASE_MAX_MS, unit="ms")
    check_range(PROTOCOL, "max_lease_ms", device_max_ms, 1, LEASE_MAX_MS, unit="ms")
    return min(requested_ms, device_max_ms)


# --- temperatures -------------------------------------------------------------------------

# sint16 in 0.01 degC; NOT_KNOWN_S16 (0x8000, "not known") is defined in drivers.codecs.wire.

_CENTI_MIN: Final = NOT_KNOWN_S16 + 1  # 0x8000 itself is reserved for "not known"


def check_centi(protocol: str, field: str, value: int, *, minimum: int = _CENTI_MIN) -> None:
    """Range check for a temperature in 0.01 degC: ``minimum`` (default -0x7FFF) .. 0x7FFF."""
    check_range(protocol, field, value, minimum, S16_MAX, unit="x 0.01 degC")


def celsius_to_centi(celsius: float) -> int:
    """Degrees Celsius to the wire unit, hundredths of a degree (rounded to nearest)."""
    if not math.isfinite(celsius):
        raise EncodeError(PROTOCOL, "temperature", f"{celsius!r} is not a finite number")
    centi = round(celsius * 100)
    check_centi(PROTOCOL, "temperature", centi)
    return centi


def centi_to_celsius(centi: int) -> float:
    """Hundredths of a degree Celsius to degrees."""
    return centi / 100


# --- ATT errors ---------------------------------------------------------------------------


class AttError(OpenIntEnum):
    """ATT error codes a device answers a refused write with (ATT Error Response).

    Two standard codes plus application codes from the 0x80-0x9F range.
    """

    WRITE_NOT_PERMITTED = 0x03
    """Standard: the characteristic is not writable (e.g. a state characteristic)."""
    INVALID_ATTRIBUTE_VALUE_LENGTH = 0x0D
    """Standard: the control-point frame has the wrong length for its opcode."""
    OPCODE_NOT_SUPPORTED = 0x80
    """The opcode is unknown to this device."""
    VALUE_OUT_OF_RANGE = 0x81
    """A parameter lies outside the device's capabilities (setpoint, speed, run-time cap, mode
    byte, lease 0)."""
    NOT_PERMITTED_IN_STATE = 0x82
    """Valid command, wrong moment: e.g. RENEW while the output is OFF (the lease expired)."""
    LEASE_TOO_LONG = 0x83
    """The requested lease exceeds 5000 ms. Refused, not clamped."""
    FAULT_ACTIVE = 0x84
    """START refused while a fault flag (low byte of the status flags) is set."""
    MODE_NOT_SUPPORTED = 0x85
    """HEAT on a device that cannot heat, or COLD on one that cannot cool."""


_ATT_ERROR_TEXT: Final[dict[int, str]] = {
    AttError.WRITE_NOT_PERMITTED: "the characteristic is not writable",
    AttError.INVALID_ATTRIBUTE_VALUE_LENGTH: "the command has the wrong length for its opcode",
    AttError.OPCODE_NOT_SUPPORTED: "the device does not know this command",
    AttError.VALUE_OUT_OF_RANGE: "a value is outside what the device supports",
    AttError.NOT_PERMITTED_IN_STATE: "the command is not allowed in the device's current state",
    AttError.LEASE_TOO_LONG: f"the lease is longer than {LEASE_MAX_MS} ms",
    AttError.FAULT_ACTIVE: "the device reports a fault; clear it before switching on",
    AttError.MODE_NOT_SUPPORTED: "the device cannot run in the requested mode",
}


def describe_att_error(code: int) -> str:
    """A short phrase for an ATT error code received from an open-profile device."""
    text = _ATT_ERROR_TEXT.get(code)
    if text is not None:
        return text
    return f"the device refused the write with ATT error 0x{code:02X}"


class CommandRejectedError(DecodeError):
    """A control-point write the device must refuse, with the ATT error code to answer."""

    def __init__(self, att_error: AttError, field: str, problem: str) -> None:
        # Skip DecodeError's wording: the device does not ignore this write, it refuses it.
        CodecError.__init__(
            self,
            PROTOCOL + " control point",
            field,
            problem,
            f"Refusing {PROTOCOL} control-point write, {field}: {problem}; "
            f"answer it with ATT error 0x{int(att_error):02X} ({att_error.name}).",
        )
        self.att_error = att_error


# --- status flags -------------------------------------------------------------------------


class StatusFlags(enum.IntFlag, boundary=enum.KEEP):
    """uint16 status flags, identical in both services. Unknown bits are kept.

    Low byte = faults: while any is set, START is refused (FAULT_ACTIVE) and the output is OFF.
    High byte = events: latched reports of why the output went OFF; they never block START.
    All flags are latched: CLEAR_FLAGS clears those whose condition has ended, an accepted
    START clears the event flags.
    """

    OVER_TEMPERATURE = 0x0001
    """Plate or motor beyond the device's own hard limit; output forced OFF."""
    SENSOR_FAULT = 0x0002
    """The device's temperature (or speed) sensor is missing or implausible."""
    STUCK_OUTPUT = 0x0004
    """The output stays energised although commanded OFF: the host must raise an alarm."""
    SUPPLY_FAULT = 0x0008
    """Supply voltage or battery too low to run the output."""
    OVERLOAD = 0x0010
    """Motor stall or over-current (percussion), heater/Peltier over-current (thermal)."""
    LEASE_EXPIRED = 0x0100
    """The lease ran out without renewal and the device turned the output OFF."""
    LINK_LOST = 0x0200
    """The BLE link dropped while ON and the device turned the output OFF."""
    RUN_CAP_REACHED = 0x0400
    """Percussion: the device-side run-time cap ended the run."""
    LOCAL_STOP = 0x0800
    """The user turned the output OFF with the device's own button."""


NO_FLAGS: Final = StatusFlags(0)
"""No flag set."""
FAULT_FLAGS: Final = StatusFlags(0x00FF)
"""The fault bits (including unknown ones in the low byte: a newer device's fault is a fault)."""
EVENT_FLAGS: Final = StatusFlags(0xFF00)
"""The event bits."""


class FlaggedState:
    """Mixin for the State frames of both services: their ``flags`` split into faults and events."""

    flags: StatusFlags

    @property
    def faults(self) -> StatusFlags:
        """The fault flags that are set."""
        return self.flags & FAULT_FLAGS

    @property
    def events(self) -> StatusFlags:
        """The event flags that are set."""
        return self.flags & EVENT_FLAGS


def end_capabilities(reader: Reader, version: int) -> None:
    """Finish reading a Capabilities frame; a version above 1 may append fields (ignored)."""
    if version <= PROFILE_VERSION:
        reader.end()


# --- control point ------------------------------------------------------------------------


class Opcode(OpenIntEnum):
    """First byte of every control-point write (both services)."""

    OFF = 0x01
    """Output OFF (STOP for percussion). Always accepted."""
    START = 0x02
    """Output ON with parameters and a lease."""
    RENEW = 0x03
    """Renew the lease of a running output."""
    CLEAR_FLAGS = 0x04
    """Clear the latched flags whose condition has ended."""


def expect_command(data: BytesLike, opcode: Opcode, length: int) -> Reader:
    """Check a control-point frame's opcode and length; return a reader after the opcode."""
    reader = Reader(data, PROTOCOL + " control point")
    if not reader.data:
        raise CommandRejectedError(
            AttError.INVALID_ATTRIBUTE_VALUE_LENGTH, "opcode", "the write is empty"
        )
    got = Opcode(reader.u8("opcode"))
    if got != opcode:
        raise CommandRejectedError(
            AttError.OPCODE_NOT_SUPPORTED, "opcode", f"expected {opcode.name}, got {got.name}"
        )
    if len(reader.data) != length:
        raise CommandRejectedError(
            AttError.INVALID_ATTRIBUTE_VALUE_LENGTH,
            "frame length",
            f"{opcode.name} is {length} bytes long, got {len(reader.data)}",
        )
    return reader


@contextmanager
def rejecting() -> Iterator[None]:
    """Inside a command's ``from_bytes``: a constructor's range error becomes VALUE_OUT_OF_RANGE."""
    try:
        yield
    except EncodeError as exc:
        raise CommandRejectedError(AttError.VALUE_OUT_OF_RANGE, exc.field, exc.problem) from exc


def read_lease(reader: Reader) -> int:
    """Read a lease field, refusing 0 and anything above :data:`LEASE_MAX_MS`."""
    lease_ms = reader.u16("lease_ms")
    if lease_ms > LEASE_MAX_MS:
        raise CommandRejectedError(
            AttError.LEASE_TOO_LONG, "lease_ms", f"{lease_ms} ms exceeds {LEASE_MAX_MS} ms"
        )
    if lease_ms == 0:
        raise CommandRejectedError(AttError.VALUE_OUT_OF_RANGE, "lease_ms", "a lease of 0 ms")
    return lease_ms


def check_lease(lease_ms: int) -> None:
    """Range check for a lease in a command under construction."""
    check_range(PROTOCOL, "lease_ms", lease_ms, 1, LEASE_MAX_MS, unit="ms")


@dataclass(frozen=True)
class OutputOff:
    """OFF (thermal) / STOP (percussion): ``01``. Turns the output OFF and ends its lease."""

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`CommandRejectedError`."""
        expect_command(data, Opcode.OFF, 1)
        return cls()

    def __bytes__(self) -> bytes:
        return u8(Opcode.OFF)


@dataclass(frozen=True)
class LeaseRenew:
    """RENEW: ``03 lease_ms(u16)``. Sets the remaining lease of a running output."""

    lease_ms: int = DEFAULT_LEASE_MS

    def __post_init__(self) -> None:
        check_lease(self.lease_ms)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`CommandRejectedError`."""
        reader = expect_command(data, Opcode.RENEW, 3)
        return cls(lease_ms=read_lease(reader))

    def __bytes__(self) -> bytes:
        return u8(Opcode.RENEW) + u16(self.lease_ms)


@dataclass(frozen=True)
class ClearFlags:
    """CLEAR_FLAGS: ``04``. Clears latched flags whose condition has ended."""

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`CommandRejectedError`."""
        expect_command(data, Opcode.CLEAR_FLAGS, 1)
        return cls()

    def __bytes__(self) -> bytes:
        return u8(Opcode.CLEAR_FLAGS)


def read_opcode(data: BytesLike) -> Opcode:
    """The opcode of a control-point write; CommandRejectedError when empty or unknown."""
    if len(data) == 0:
        raise CommandRejectedError(
            AttError.INVALID_ATTRIBUTE_VALUE_LENGTH, "opcode", "the write is empty"
        )
    opcode = Opcode(data[0])
    if not opcode.is_known:
        raise CommandRejectedError(
            AttError.OPCODE_NOT_SUPPORTED, "opcode", f"0x{int(opcode):02X} is not an opcode"
        )
    return opcode


def dispatch_command(
    data: BytesLike, start: Callable[[BytesLike], _StartT]
) -> OutputOff | _StartT | LeaseRenew | ClearFlags:
    """Decode a Control Point write of either service; ``start`` decodes the service's START.

    Raises :class:`CommandRejectedError`; answer the write with its ``att_error``.
    """
    opcode = read_opcode(data)
    if opcode == Opcode.START:
        return start(data)
    if opcode == Opcode.RENEW:
        return LeaseRenew.from_bytes(data)
    if opcode == Opcode.CLEAR_FLAGS:
        return ClearFlags.from_bytes(data)
    return OutputOff.from_bytes(data)
