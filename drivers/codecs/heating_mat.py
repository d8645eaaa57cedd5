"""Generic BLE heating mat (Korean mats driven by a bleak Home Assistant integration).

Sources: github.com/101Sean/hass_ble_heatingmat (``const.py``, ``__init__.py``,
``custom_components/ble_heatingmat/ble_manager.py``) and github.com/101Sean/homebridge-heatingmat
(``index.js``, ``lib/utils.js``, ``lib/constants.js``); see docs/protocols.md.

* Service 0xFF01. 0xFF10 auth/init: the integration writes an init packet captured from the
  vendor app (with response); its configurable default is ``a5 5a ff ff``.
* 0xFF20 heat level (write, read, notify): level 0 = off, 1..7 = 36..42 degC; writing the
  value 0x12 asks the mat to report its state.
* 0xFF30 timer in hours (write, read, notify): 1..12 h, 0 (``00 FF 00 FF``) = timer off.
* Host writes are value packets ``[v, 0xFF-v, v, 0xFF-v]``.
* Reads and notifications carry the value in byte 3 with its complement in byte 2
  (hass: accepts when b[2] + b[3] == 0xFF and takes 0xFF - b[2]; homebridge: takes b[3] and
  logs b[1] as a "current" value). Bytes 0-1 are not understood; we keep them raw and, when
  producing reports (simulator), send ``[0xFF-v, v, 0xFF-v, v]``.
* No advertised name is published: both integrations find the mat by its MAC address.
* Another firmware reportedly maps levels to 15..50 degC in 5 degC steps; not modelled
  (no byte-level source).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Self

from drivers.codecs.errors import DecodeError, EncodeError
from drivers.codecs.sig_common import sig_uuid
from drivers.codecs.wire import BytesLike, Reader, check_range, decoding

__all__ = [
    "ADVERTISED_NAMES",
    "AUTH_UUID",
    "DEFAULT_INIT_PACKET",
    "INIT_REWRITE_INTERVAL_S",
    "LEVEL_CELSIUS",
    "LEVEL_UUID",
    "MAX_LEVEL",
    "MAX_TIMER_HOURS",
    "SERVICE_UUID",
    "STATUS_POLL_INTERVAL_S",
    "STATUS_REQUEST_VALUE",
    "TIMER_UUID",
    "InitPacket",
    "LevelCommand",
    "LevelWrite",
    "MatReport",
    "StatusRequest",
    "TimerCommand",
    "ValuePacket",
    "celsius_for_level",
    "decode_level_write",
    "level_for_celsius",
]

PROTOCOL: Final = "heating mat"

SERVICE_UUID: Final = sig_uuid(0xFF01)
AUTH_UUID: Final = sig_uuid(0xFF10)
LEVEL_UUID: Final = sig_uuid(0xFF20)
TIMER_UUID: Final = sig_uuid(0xFF30)

DEFAULT_INIT_PACKET: Final = bytes.fromhex("a55affff")
"""Default init packet: hass_ble_heatingmat ``__init__.py`` (CONFIG_SCHEMA default
``init_packet_hex = "a55affff"``) and ``custom_components/test_ble.py``. A user may have to
capture their own mat's packet from the vendor app."""

ADVERTISED_NAMES: Final[tuple[str, ...]] = ()
"""None published: both sources select the mat by MAC address."""

MAX_LEVEL: Final = 7
STATUS_REQUEST_VALUE: Final = 0x12
"""Written to 0xFF20: asks the mat to report level (hass ``ble_manager.py``)."""
MAX_TIMER_HOURS: Final = 12

LEVEL_CELSIUS: Final = {1: 36, 2: 37, 3: 38, 4: 39, 5: 40, 6: 41, 7: 42}
"""Level -> nominal mat temperature in degC (both sources' LEVEL_TEMP_MAP); level 0 is off."""

STATUS_POLL_INTERVAL_S: Final = 30.0
"""hass_ble_heatingmat re-sends the status request every 30 s as keep-alive."""
INIT_REWRITE_INTERVAL_S: Final = 10.0
"""homebridge-heatingmat re-writes the init packet every 10 s as keep-alive."""

_INIT_MAX: Final = 20  # one write at the default ATT MTU of 23
_LEAD_LENGTH: Final = 2


def level_for_celsius(celsius: int) -> int:
    """The level for a nominal temperature (36..42 degC); raises EncodeError otherwise."""
    for level, value in LEVEL_CELSIUS.items():
        if value == celsius:
            return level
    raise EncodeError(PROTOCOL, "temperature", f"{celsius} degC is not one of 36..42 degC")


def celsius_for_level(level: int) -> int | None:
    """The nominal temperature of a level, None for 0 (off)."""
    check_range(PROTOCOL, "level", level, 0, MAX_LEVEL)
    return LEVEL_CELSIUS.get(level)


@dataclass(frozen=True)
class ValuePacket:
    """The host's write format ``[v, 0xFF-v, v, 0xFF-v]``; the decoder checks every complement."""

    value: int

    def __post_init__(self) -> None:
        check_range(PROTOCOL, "value", self.value, 0, 0xFF)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        reader = Reader(data, PROTOCOL)
        value, inverse, again, inverse_again = reader.take(4, "value packet")
        reader.end()
        if (value, inverse, again, inverse_again) != (value, 0xFF - value, value, 0xFF - value):
            raise DecodeError(
                PROTOCOL,
                "value packet",
                f"{reader.data.hex(' ')} is not [v, 0xFF-v, v, 0xFF-v]",
            )
        return cls(value)

    def __bytes__(self) -> bytes:
        return bytes((self.value, 0xFF - self.value, self.value, 0xFF - self.value))


@dataclass(frozen=True)
class LevelCommand:
    """Set the heat level (0xFF20): 0 = off, 1..7."""

    level: int

    def __post_init__(self) -> None:
        check_range(PROTOCOL, "level", self.level, 0, MAX_LEVEL)

    @classmethod
    def off(cls) -> Self:
        """Level 0."""
        return cls(0)

    @property
    def celsius(self) -> int | None:
        """Nominal temperature, None when off."""
        return LEVEL_CELSIUS.get(self.level)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        packet = ValuePacket.from_bytes(data)
        with decoding(PROTOCOL):
            return cls(packet.value)

    def __bytes__(self) -> bytes:
        return bytes(ValuePacket(self.level))


@dataclass(frozen=True)
class StatusRequest:
    """Ask for the level report: value packet 0x12 on 0xFF20 (``12 ED 12 ED``)."""

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        packet = ValuePacket.from_bytes(data)
        if packet.value != STATUS_REQUEST_VALUE:
            raise DecodeError(PROTOCOL, "status request", f"value {packet.value}, expected 0x12")
        return cls()

    def __bytes__(self) -> bytes:
        return bytes(ValuePacket(STATUS_REQUEST_VALUE))


LevelWrite = LevelCommand | StatusRequest
"""What a host writes to 0xFF20."""


def decode_level_write(data: BytesLike) -> LevelWrite:
    """Decode a write to 0xFF20 (device side)."""
    packet = ValuePacket.from_bytes(data)
    if packet.value == STATUS_REQUEST_VALUE:
        return StatusRequest()
    return LevelCommand.from_bytes(data)


@dataclass(frozen=True)
class TimerCommand:
    """Set the timer (0xFF30): 1..12 hours, 0 = timer off (``00 FF 00 FF``)."""

    hours: int

    def __post_init__(self) -> None:
        check_range(PROTOCOL, "timer hours", self.hours, 0, MAX_TIMER_HOURS, unit="h")

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        packet = ValuePacket.from_bytes(data)
        with decoding(PROTOCOL):
            return cls(packet.value)

    def __bytes__(self) -> bytes:
        return bytes(ValuePacket(self.hours))


@dataclass(frozen=True)
class MatReport:
    """A read or notification of 0xFF20 (level) or 0xFF30 (timer hours).

    ``lead`` (bytes 0-1) is kept raw; ``value`` is byte 3, checked against its complement in
    byte 2. Bytes after the fourth are ignored.
    """

    value: int
    lead: bytes

    def __post_init__(self) -> None:
        check_range(PROTOCOL, "report value", self.value, 0, 0xFF)
        if not isinstance(self.lead, bytes):
            raise EncodeError(PROTOCOL, "report lead", "must be bytes")
        check_range(PROTOCOL, "report lead", len(self.lead), _LEAD_LENGTH, _LEAD_LENGTH)

    @classmethod
    def of(cls, value: int) -> Self:
        """The report a simulated mat sends: ``[0xFF-v, v, 0xFF-v, v]``."""
        check_range(PROTOCOL, "report value", value, 0, 0xFF)
        return cls(value, bytes((0xFF - value, value)))

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        reader = Reader(data, PROTOCOL)
        lead = reader.take(_LEAD_LENGTH, "report lead")
        inverse, value = reader.take(2, "report value")
        if inverse + value != 0xFF:
            raise DecodeError(
                PROTOCOL,
                "report value",
                f"bytes 2-3 ({inverse:02x} {value:02x}) are not [0xFF-v, v]",
            )
        return cls(value, lead)

    def __bytes__(self) -> bytes:
        return self.lead + bytes((0xFF - self.value, self.value))


@dataclass(frozen=True)
class InitPacket:
    """The auth/init write to 0xFF10: opaque bytes captured from the vendor app."""

    payload: bytes = DEFAULT_INIT_PACKET

    def __post_init__(self) -> None:
        if not isinstance(self.payload, bytes):
            raise EncodeError(PROTOCOL, "init packet", "must be bytes")
        check_range(PROTOCOL, "init packet length", len(self.payload), 1, _INIT_MAX, unit="bytes")

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        payload = Reader(data, PROTOCOL).rest()
        with decoding(PROTOCOL):
            return cls(payload)

    def __bytes__(self) -> bytes:
        return self.payload
