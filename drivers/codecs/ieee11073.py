"""IEEE 11073-20601 32-bit FLOAT ("FLOAT-Type"), as used by the SIG Health Thermometer.

Little-endian on the wire: a 24-bit two's-complement mantissa, then an 8-bit two's-complement
exponent; value = mantissa x 10^exponent. Five mantissas are reserved (exponent 0):

==========  ================================
0x007FFFFF  NaN (not a number)
0x00800000  NRes (not at this resolution)
0x007FFFFE  +INFINITY
0x00800002  -INFINITY
0x00800001  reserved for future use
==========  ================================

Example: 37.5 is mantissa 375, exponent -1, bytes ``77 01 00 FF``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final, Self

from drivers.codecs.errors import EncodeError
from drivers.codecs.wire import BytesLike, Reader, check_range, decoding

__all__ = [
    "MANTISSA_MAX",
    "MANTISSA_MIN",
    "NAN",
    "NEGATIVE_INFINITY",
    "NRES",
    "POSITIVE_INFINITY",
    "MedFloat32",
]

_PROTOCOL = "IEEE-11073 FLOAT"

_RAW_NAN: Final = 0x7FFFFF
_RAW_NRES: Final = -0x800000
_RAW_POSITIVE_INFINITY: Final = 0x7FFFFE
_RAW_NEGATIVE_INFINITY: Final = -0x7FFFFE  # 0x800002 as a signed 24-bit number
_RAW_RESERVED: Final = -0x7FFFFF  # 0x800001
_SPECIAL: Final = frozenset(
    {_RAW_NAN, _RAW_NRES, _RAW_POSITIVE_INFINITY, _RAW_NEGATIVE_INFINITY, _RAW_RESERVED}
)

MANTISSA_MAX: Final = 0x7FFFFD
"""Largest finite mantissa (the ones above are reserved)."""
MANTISSA_MIN: Final = -0x7FFFFD
"""Smallest finite mantissa (0x800003)."""
_EXPONENT_MIN: Final = -128
_EXPONENT_MAX: Final = 127
_MAX_DECIMALS: Final = 8


@dataclass(frozen=True)
class MedFloat32:
    """A 32-bit FLOAT exactly as on the wire: mantissa and exponent (no rounding on decode)."""

    mantissa: int
    exponent: int = 0

    def __post_init__(self) -> None:
        check_range(_PROTOCOL, "mantissa", self.mantissa, -0x800000, 0x7FFFFF)
        check_range(_PROTOCOL, "exponent", self.exponent, _EXPONENT_MIN, _EXPONENT_MAX)

    @property
    def is_special(self) -> bool:
        """True for NaN, NRes, +/-INFINITY and the reserved value."""
        return self.mantissa in _SPECIAL

    @property
    def is_finite(self) -> bool:
        """True when the value is a number (not one of the special values)."""
        return not self.is_special

    def to_float(self) -> float:
        """The value as a float: NaN for NaN, NRes and reserved; +/-inf for the infinities."""
        if self.mantissa == _RAW_POSITIVE_INFINITY:
            return math.inf
        if self.mantissa == _RAW_NEGATIVE_INFINITY:
            return -math.inf
        if self.is_special:
            return math.nan
        scale: int = 10 ** abs(self.exponent)
        if self.exponent < 0:
            return self.mantissa / scale  # exact integers: the quotient is correctly rounded
        return float(self.mantissa * scale)

    @classmethod
    def from_float(cls, value: float, *, decimals: int = 2) -> Self:
        """The shortest FLOAT for ``value`` rounded to ``decimals`` decimal places.

        NaN and the infinities map to their special values. Trailing zeros are dropped
        (37.50 -> 375 x 10^-1); values too large for the mantissa lose precision.
        """
        check_range(_PROTOCOL, "decimals", decimals, 0, _MAX_DECIMALS)
        if math.isnan(value):
            return cls(_RAW_NAN)
        if math.isinf(value):
            return cls(_RAW_POSITIVE_INFINITY if value > 0 else _RAW_NEGATIVE_INFINITY)
        exact = Decimal(repr(float(value)))
        for exponent in range(-decimals, _EXPONENT_MAX + 1):
            # Round once from the exact value (no double rounding when the mantissa overflows).
            mantissa = int(exact.scaleb(-exponent).to_integral_value(ROUND_HALF_EVEN))
            if abs(mantissa) <= MANTISSA_MAX:
                break
        else:
            raise EncodeError(_PROTOCOL, "value", f"{value!r} is too large for a 32-bit FLOAT")
        if mantissa == 0:
            return cls(0, 0)
        while exponent < 0 and mantissa % 10 == 0:
            mantissa //= 10
            exponent += 1
        return cls(mantissa, exponent)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode exactly 4 bytes; raises :class:`~drivers.codecs.errors.DecodeError`."""
        reader = Reader(data, _PROTOCOL)
        raw = reader.u32("value")
        reader.end()
        return cls.from_raw(raw)

    @classmethod
    def from_raw(cls, raw: int) -> Self:
        """From the 32-bit integer the 4 little-endian bytes hold."""
        mantissa = raw & 0xFFFFFF
        if mantissa & 0x800000:
            mantissa -= 0x1000000
        exponent = (raw >> 24) & 0xFF
        if exponent & 0x80:
            exponent -= 0x100
        with decoding(_PROTOCOL):
            return cls(mantissa, exponent)

    def __bytes__(self) -> bytes:
        raw = (self.mantissa & 0xFFFFFF) | ((self.exponent & 0xFF) << 24)
        return raw.to_bytes(4, "little")


NAN: Final = MedFloat32(_RAW_NAN)
NRES: Final = MedFloat32(_RAW_NRES)
POSITIVE_INFINITY: Final = MedFloat32(_RAW_POSITIVE_INFINITY)
NEGATIVE_INFINITY: Final = MedFloat32(_RAW_NEGATIVE_INFINITY)
