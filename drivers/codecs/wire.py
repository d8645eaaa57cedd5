"""Byte-level helpers shared by the codecs: a bounds-checked reader and range checks.

Every read goes through :class:`Reader`, so a short frame becomes a :class:`DecodeError` that
names the protocol and field, never an ``IndexError``. :func:`decoding` turns the range errors a
frame's constructor raises (:class:`EncodeError`) into :class:`DecodeError` for ``from_bytes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final, TypeVar

from drivers.codecs.errors import DecodeError, EncodeError

__all__ = [
    "ATT_MAX_VALUE_LENGTH",
    "NOT_KNOWN_S16",
    "S16_MAX",
    "BytesLike",
    "Reader",
    "check_range",
    "decoding",
    "optional_s16",
    "read_single",
    "s16",
    "u8",
    "u16",
    "u16be",
]

_T = TypeVar("_T")

BytesLike = bytes | bytearray | memoryview
"""What decoders accept: bleak hands notifications over as ``bytearray``."""

ATT_MAX_VALUE_LENGTH: Final = 512
"""The longest attribute value ATT allows (Core Spec Vol 3 Part F 3.2.9)."""

NOT_KNOWN_S16: Final = -0x8000
"""sint16 0x8000: "value not known" (as in SIG Temperature 0x2A6E and the open profile)."""

S16_MAX: Final = 0x7FFF
"""The largest sint16."""


def check_range(
    protocol: str, field: str, value: int, low: int, high: int, *, unit: str = ""
) -> None:
    """Raise :class:`EncodeError` unless ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(protocol, field, f"{value!r} is not an integer")
    if not low <= value <= high:
        suffix = f" {unit}" if unit else ""
        raise EncodeError(protocol, field, f"{value} is outside {low}..{high}{suffix}")


@contextmanager
def decoding(protocol: str) -> Iterator[None]:
    """Inside ``from_bytes``: re-raise a constructor's :class:`EncodeError` as a DecodeError."""
    try:
        yield
    except EncodeError as exc:
        raise DecodeError(protocol, exc.field, exc.problem) from exc


def u8(value: int) -> bytes:
    """One unsigned byte."""
    return value.to_bytes(1, "little")


def u16(value: int) -> bytes:
    """An unsigned 16-bit little-endian integer (the Bluetooth byte order)."""
    return value.to_bytes(2, "little")


def s16(value: int) -> bytes:
    """A signed 16-bit little-endian integer."""
    return value.to_bytes(2, "little", signed=True)


def optional_s16(value: int | None) -> bytes:
    """A signed 16-bit little-endian integer; None is sent as :data:`NOT_KNOWN_S16`."""
    return s16(NOT_KNOWN_S16 if value is None else value)


def u16be(value: int) -> bytes:
    """An unsigned 16-bit big-endian integer (vendor protocols)."""
    return value.to_bytes(2, "big")


class Reader:
    """Reads fields from a frame front to back; short or over-long frames raise DecodeError."""

    def __init__(self, data: BytesLike, protocol: str) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError(protocol, "frame", f"expected bytes, got {type(data).__name__}")
        self._data = bytes(data)
        self._pos = 0
        self.protocol = protocol

    @property
    def data(self) -> bytes:
        """The whole frame."""
        return self._data

    @property
    def remaining(self) -> int:
        """How many bytes are left to read."""
        return len(self._data) - self._pos

    def take(self, count: int, field: str) -> bytes:
        """The next ``count`` bytes."""
        if self.remaining < count:
            raise DecodeError(
                self.protocol,
                field,
                f"the frame is {len(self._data)} bytes long and ends before this field "
                f"({count} bytes needed at offset {self._pos})",
            )
        chunk = self._data[self._pos : self._pos + count]
        self._pos += count
        return chunk

    def rest(self) -> bytes:
        """Everything not read yet."""
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return chunk

    def u8(self, field: str) -> int:
        """An unsigned byte."""
        return self.take(1, field)[0]

    def u16(self, field: str) -> int:
        """An unsigned 16-bit little-endian integer."""
        return int.from_bytes(self.take(2, field), "little")

    def s16(self, field: str) -> int:
        """A signed 16-bit little-endian integer."""
        return int.from_bytes(self.take(2, field), "little", signed=True)

    def optional_s16(self, field: str) -> int | None:
        """A signed 16-bit little-endian integer; :data:`NOT_KNOWN_S16` reads as None."""
        value = self.s16(field)
        return None if value == NOT_KNOWN_S16 else value

    def u16be(self, field: str) -> int:
        """An unsigned 16-bit big-endian integer."""
        return int.from_bytes(self.take(2, field), "big")

    def u32(self, field: str) -> int:
        """An unsigned 32-bit little-endian integer."""
        return int.from_bytes(self.take(4, field), "little")

    def end(self) -> None:
        """Require that the whole frame was read."""
        if self.remaining:
            raise DecodeError(
                self.protocol,
                "frame length",
                f"{self.remaining} unexpected trailing byte(s) after a "
                f"{self._pos}-byte frame ({len(self._data)} bytes received)",
            )


def read_single(
    data: BytesLike, protocol: str, read: Callable[[Reader, str], _T], field: str
) -> _T:
    """The one field a frame holds, read with a :class:`Reader` method (e.g. ``Reader.u8``).

    Raises :class:`DecodeError` when the frame is not bytes, too short, or longer than the field.
    """
    reader = Reader(data, protocol)
    value = read(reader, field)
    reader.end()
    return value
