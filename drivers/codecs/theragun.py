"""Theragun Gen-4 (PRO, Elite, Prime; Wave rollers): the publicly known part of the protocol.

Source: buttplugio/docs.buttplug.io ``stpihkal/protocols/theragun/index.md`` (names, Wave
speed-level counts), derived from github.com/buttplugio/stpihkal issue #127 (decompiled
Android app), as docs/protocols.md describes. Only what is published is modelled:
the force (pressure) field's offset and the Wave devices' level byte are NOT known and are not
invented here. Wave devices are therefore recognised by name but cannot be commanded.

Service 0xFFE0; 0xFFE1 notify (device -> host); 0xFFE2 write (host -> device).

Frame layout: ``header checksum type length payload...`` where header is 0xAA (host ->
device) or 0xBB (device -> host) and checksum = sum(frame[2:]) & 0xFF. In all four published
host frames byte 3 equals the payload length, so we encode it that way; on decoding device
notifications we do not rely on it (unverified for notifications).

Notifications we produce (simulator) -- bytes we do not know are sent as zero:

* status, type 0x10, 15 bytes: ``BB ck 10 0B running 00*8 rpm_hi rpm_lo``
  (running = b[4], speed = b[13] << 8 | b[14], as published);
* version, type 0x20, 14 bytes: ``BB ck 20 0A 00*8 v_hi v_lo``
  (v = b[12] << 8 | b[13]; major = v // 100, minor = (v % 100) // 10, patch = v % 10).

The decoder accepts longer notifications (real devices may send more bytes) as long as the
checksum over all of them holds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Final, Self

from drivers.codecs.enums import OpenIntEnum
from drivers.codecs.errors import DecodeError, EncodeError
from drivers.codecs.sig_common import sig_uuid
from drivers.codecs.wire import BytesLike, Reader, check_range, decoding, u8, u16be

__all__ = [
    "COMMAND_UUID",
    "DEVICE_HEADER",
    "HOST_HEADER",
    "MAX_RPM",
    "MODELS",
    "NOTIFY_UUID",
    "SERVICE_UUID",
    "FrameType",
    "ModelSpec",
    "SetSpeed",
    "StatusNotification",
    "StatusRequest",
    "TheragunCommand",
    "TheragunModel",
    "TheragunNotification",
    "UnknownNotification",
    "VersionNotification",
    "VersionRequest",
    "checksum",
    "decode_command",
    "decode_notification",
    "model_for_name",
]

PROTOCOL: Final = "Theragun"

SERVICE_UUID: Final = sig_uuid(0xFFE0)
NOTIFY_UUID: Final = sig_uuid(0xFFE1)
"""Device -> host notifications."""
COMMAND_UUID: Final = sig_uuid(0xFFE2)
"""Host -> device writes."""

HOST_HEADER: Final = 0xAA
DEVICE_HEADER: Final = 0xBB
_SET_SPEED_LENGTH: Final = 0x03
_SET_SPEED_TRAILER: Final = 0x03  # last byte of every published set-speed frame; meaning unknown
_STATUS_PAYLOAD: Final = 11  # running .. rpm_lo
_VERSION_PAYLOAD: Final = 10  # 8 unknown bytes, v_hi, v_lo
_UNKNOWN_FILL: Final = 8  # bytes we do not know in both notifications, sent as zero
_VERSION_MINOR_MAX: Final = 9
_VERSION_MAJOR_MAX: Final = 655  # 655 * 100 + 35 = 65535, the largest 16-bit version code


class FrameType(OpenIntEnum):
    """Byte 2 of every frame."""

    SET_SPEED = 0x01
    STATUS = 0x10
    VERSION = 0x20


class TheragunModel(enum.Enum):
    """Gen-4 devices by advertised name."""

    PRO = "Pro"
    ELITE = "Elite"
    PRIME = "Prime"
    WAVE_ROLLER = "fr01"
    WAVE_SOLO = "WaveSolo"
    WAVE_DUO = "WaveDuo"


@dataclass(frozen=True)
class ModelSpec:
    """What is published about one model."""

    model: TheragunModel
    names: tuple[str, ...]
    """Advertised local names."""
    max_rpm: int | None
    """Top of the 0..max_rpm set-speed range; None = not commandable by rpm (Wave)."""
    speed_levels: int | None = None
    """Wave devices: number of speed levels (the level byte itself is not published)."""


MODELS: Final = {
    TheragunModel.PRO: ModelSpec(TheragunModel.PRO, ("Pro",), 3616),
    TheragunModel.ELITE: ModelSpec(TheragunModel.ELITE, ("Elite",), 3616),
    TheragunModel.PRIME: ModelSpec(TheragunModel.PRIME, ("Prime", "liv2"), 3584),
    TheragunModel.WAVE_ROLLER: ModelSpec(TheragunModel.WAVE_ROLLER, ("fr01",), None, 5),
    TheragunModel.WAVE_SOLO: ModelSpec(TheragunModel.WAVE_SOLO, ("WaveSolo",), None, 3),
    TheragunModel.WAVE_DUO: ModelSpec(TheragunModel.WAVE_DUO, ("WaveDuo",), None, 5),
}
"""Per-model facts ("liv2" is the Prime's name on older firmware)."""

MAX_RPM: Final = max(spec.max_rpm for spec in MODELS.values() if spec.max_rpm is not None)
"""The highest speed any known model accepts (3616)."""

_BY_NAME: Final = {name: spec.model for spec in MODELS.values() for name in spec.names}


def model_for_name(name: str | None) -> TheragunModel | None:
    """The model an advertised local name belongs to, or None."""
    if name is None:
        return None
    return _BY_NAME.get(name.strip())


def checksum(body: bytes) -> int:
    """The checksum byte: the sum of every byte from index 2 on, modulo 256."""
    return sum(body) & 0xFF


def _frame(header: int, frame_type: int, payload: bytes) -> bytes:
    body = u8(frame_type) + u8(len(payload)) + payload
    return u8(header) + u8(checksum(body)) + body


def _open_frame(data: BytesLike, header: int, minimum: int) -> Reader:
    """Check header, minimum length and checksum; return a reader positioned at byte 2."""
    reader = Reader(data, PROTOCOL)
    frame = reader.data
    if len(frame) < minimum:
        raise DecodeError(PROTOCOL, "frame length", f"{len(frame)} bytes, at least {minimum}")
    if frame[0] != header:
        raise DecodeError(PROTOCOL, "header", f"0x{frame[0]:02X}, expected 0x{header:02X}")
    expected = checksum(frame[2:])
    if frame[1] != expected:
        raise DecodeError(
            PROTOCOL, "checksum", f"0x{frame[1]:02X}, the bytes add up to 0x{expected:02X}"
        )
    reader.take(2, "header")
    return reader


def _open_typed(data: BytesLike, header: int, frame_type: FrameType, minimum: int) -> Reader:
    """:func:`_open_frame`, then require ``frame_type``; return a reader at the length byte."""
    reader = _open_frame(data, header, minimum)
    got = FrameType(reader.u8("type"))
    if got != frame_type:
        raise DecodeError(PROTOCOL, "type", f"{got.name}, expected {frame_type.name}")
    return reader


def _open_notification(data: BytesLike, frame_type: FrameType, payload: int) -> Reader:
    """Open a device frame of ``frame_type`` with at least ``payload`` bytes; reader at byte 4."""
    reader = _open_typed(data, DEVICE_HEADER, frame_type, 4 + payload)
    reader.u8("length")  # not relied on, see the module docstring
    return reader


def _notification(frame_type: FrameType, lead: bytes, value: int) -> bytes:
    """A device frame: ``lead``, the bytes we do not know (as zero), ``value`` (u16 big-endian)."""
    return _frame(DEVICE_HEADER, frame_type, lead + bytes(_UNKNOWN_FILL) + u16be(value))


# --- host -> device -----------------------------------------------------------------------


@dataclass(frozen=True)
class SetSpeed:
    """Set speed: ``AA ck 01 03 rpm_hi rpm_lo 03`` (write with response). 0 rpm = stop.

    2400 rpm is ``AA 70 01 03 09 60 03``; stop is ``AA 07 01 03 00 00 03``.
    """

    WITH_RESPONSE: ClassVar[bool] = True

    rpm: int

    def __post_init__(self) -> None:
        check_range(PROTOCOL + " set speed", "rpm", self.rpm, 0, MAX_RPM, unit="rpm")

    @classmethod
    def stop(cls) -> Self:
        """Speed 0."""
        return cls(0)

    @classmethod
    def for_model(cls, model: TheragunModel, rpm: int) -> Self:
        """A set-speed frame checked against ``model``'s published range."""
        spec = MODELS[model]
        if spec.max_rpm is None:
            raise EncodeError(PROTOCOL, "model", f"{model.value} has no published speed command")
        check_range(PROTOCOL + " " + model.value, "rpm", rpm, 0, spec.max_rpm, unit="rpm")
        return cls(rpm)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode (device side); raises :class:`~drivers.codecs.errors.DecodeError`."""
        reader = _open_typed(data, HOST_HEADER, FrameType.SET_SPEED, 7)
        if reader.u8("length") != _SET_SPEED_LENGTH:
            raise DecodeError(PROTOCOL, "length", f"set speed carries {_SET_SPEED_LENGTH} bytes")
        rpm = reader.u16be("rpm")
        if reader.u8("trailer") != _SET_SPEED_TRAILER:
            raise DecodeError(PROTOCOL, "trailer", f"expected 0x{_SET_SPEED_TRAILER:02X}")
        reader.end()
        with decoding(PROTOCOL + " set speed"):
            return cls(rpm)

    def __bytes__(self) -> bytes:
        return _frame(HOST_HEADER, FrameType.SET_SPEED, u16be(self.rpm) + u8(_SET_SPEED_TRAILER))


class _EmptyRequest:
    """A host request without payload, ``AA ck type 00``; a subclass sets its FRAME_TYPE."""

    FRAME_TYPE: ClassVar[FrameType]

    @classmethod
    def _check(cls, data: BytesLike) -> None:
        """Raise :class:`DecodeError` unless ``data`` is exactly this request."""
        reader = _open_typed(data, HOST_HEADER, cls.FRAME_TYPE, 4)
        if reader.u8("length") != 0:
            name = cls.FRAME_TYPE.name.lower()
            raise DecodeError(PROTOCOL, "length", f"a {name} request has no payload")
        reader.end()

    def __bytes__(self) -> bytes:
        return _frame(HOST_HEADER, self.FRAME_TYPE, b"")


@dataclass(frozen=True)
class StatusRequest(_EmptyRequest):
    """Status request: ``AA 10 10 00`` (write with response); answered by a status frame."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.STATUS
    WITH_RESPONSE: ClassVar[bool] = True

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode (device side); raises :class:`~drivers.codecs.errors.DecodeError`."""
        cls._check(data)
        return cls()


@dataclass(frozen=True)
class VersionRequest(_EmptyRequest):
    """Version request: ``AA 20 20 00`` (write without response)."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.VERSION
    WITH_RESPONSE: ClassVar[bool] = False

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode (device side); raises :class:`~drivers.codecs.errors.DecodeError`."""
        cls._check(data)
        return cls()


TheragunCommand = SetSpeed | StatusRequest | VersionRequest


def decode_command(data: BytesLike) -> TheragunCommand:
    """Decode a write to 0xFFE2 (device side); raises DecodeError for anything else."""
    reader = _open_frame(data, HOST_HEADER, 4)
    frame_type = FrameType(reader.u8("type"))
    if frame_type == FrameType.SET_SPEED:
        return SetSpeed.from_bytes(data)
    if frame_type == FrameType.STATUS:
        return StatusRequest.from_bytes(data)
    if frame_type == FrameType.VERSION:
        return VersionRequest.from_bytes(data)
    raise DecodeError(PROTOCOL, "type", f"0x{int(frame_type):02X} is not a known command")


# --- device -> host -----------------------------------------------------------------------


@dataclass(frozen=True)
class StatusNotification:
    """Status notification (type 0x10): running flag (b[4]) and speed (b[13..14], rpm).

    A nonzero b[4] is taken as running.
    """

    running: bool
    rpm: int

    def __post_init__(self) -> None:
        check_range(PROTOCOL + " status", "rpm", self.rpm, 0, 0xFFFF, unit="rpm")

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        reader = _open_notification(data, FrameType.STATUS, _STATUS_PAYLOAD)
        running = reader.u8("running")
        reader.take(_UNKNOWN_FILL, "status")
        return cls(running != 0, reader.u16be("rpm"))

    def __bytes__(self) -> bytes:
        return _notification(FrameType.STATUS, u8(int(self.running)), self.rpm)


@dataclass(frozen=True)
class VersionNotification:
    """Version notification (type 0x20): version code v = b[12] << 8 | b[13]."""

    code: int

    def __post_init__(self) -> None:
        check_range(PROTOCOL + " version", "code", self.code, 0, 0xFFFF)

    @classmethod
    def from_parts(cls, major: int, minor: int, patch: int) -> Self:
        """From ``major.minor.patch`` (minor and patch are single digits)."""
        check_range(PROTOCOL + " version", "major", major, 0, _VERSION_MAJOR_MAX)
        check_range(PROTOCOL + " version", "minor", minor, 0, _VERSION_MINOR_MAX)
        check_range(PROTOCOL + " version", "patch", patch, 0, _VERSION_MINOR_MAX)
        return cls(major * 100 + minor * 10 + patch)

    @property
    def major(self) -> int:
        """v // 100."""
        return self.code // 100

    @property
    def minor(self) -> int:
        """(v % 100) // 10."""
        return (self.code % 100) // 10

    @property
    def patch(self) -> int:
        """v % 10."""
        return self.code % 10

    @property
    def text(self) -> str:
        """``major.minor.patch``."""
        return f"{self.major}.{self.minor}.{self.patch}"

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        reader = _open_notification(data, FrameType.VERSION, _VERSION_PAYLOAD)
        reader.take(_UNKNOWN_FILL, "version")
        return cls(reader.u16be("version"))

    def __bytes__(self) -> bytes:
        return _notification(FrameType.VERSION, b"", self.code)


@dataclass(frozen=True)
class UnknownNotification:
    """A well-formed device frame of a type we do not decode (kept for logging)."""

    frame_type: int
    payload: bytes

    def __post_init__(self) -> None:
        check_range(PROTOCOL, "type", self.frame_type, 0, 0xFF)
        check_range(PROTOCOL, "payload length", len(self.payload), 0, 0xFF)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        reader = _open_frame(data, DEVICE_HEADER, 4)
        frame_type = reader.u8("type")
        reader.u8("length")
        return cls(frame_type, reader.rest())

    def __bytes__(self) -> bytes:
        return _frame(DEVICE_HEADER, self.frame_type, self.payload)


TheragunNotification = StatusNotification | VersionNotification | UnknownNotification


def decode_notification(data: BytesLike) -> TheragunNotification:
    """Decode a 0xFFE1 notification; raises DecodeError for malformed frames."""
    reader = _open_frame(data, DEVICE_HEADER, 4)
    frame_type = FrameType(reader.u8("type"))
    if frame_type == FrameType.STATUS:
        return StatusNotification.from_bytes(data)
    if frame_type == FrameType.VERSION:
        return VersionNotification.from_bytes(data)
    return UnknownNotification.from_bytes(data)
