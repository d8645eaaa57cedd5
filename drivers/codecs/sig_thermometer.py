"""SIG Health Thermometer (service 0x1809): the skin-temperature probe's characteristics.

* Temperature Measurement 0x2A1C (indicate) and Intermediate Temperature 0x2A1E (notify):
  ``flags(u8) value(FLOAT) [date-time(7)] [type(u8)]``; flags bit0 = Fahrenheit, bit1 =
  time stamp present, bit2 = temperature type present; bits 3-7 are reserved (sent as 0,
  ignored on receipt). Example: 37.5 degC is ``00 77 01 00 FF``.
* Temperature Type 0x2A1D: one byte (:class:`TemperatureTypeValue`).
* Measurement Interval 0x2A21: uint16 seconds, 0 = no periodic measurement.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Final, Self

from drivers.codecs.enums import OpenIntEnum
from drivers.codecs.errors import DecodeError
from drivers.codecs.ieee11073 import MedFloat32
from drivers.codecs.wire import BytesLike, Reader, check_range, decoding, read_single, u8, u16

__all__ = [
    "DateTime",
    "MeasurementFlags",
    "MeasurementInterval",
    "TemperatureMeasurement",
    "TemperatureType",
    "TemperatureTypeValue",
]

_MEASUREMENT = "SIG Temperature Measurement"
_TYPE = "SIG Temperature Type"
_INTERVAL = "SIG Measurement Interval"
_DATE_TIME = "SIG Date Time"
_YEAR_MIN: Final = 1582  # the characteristic's range; 0 means "not known"
_YEAR_MAX: Final = 9999
_FAHRENHEIT_OFFSET: Final = 32.0
_FAHRENHEIT_PER_CELSIUS: Final = 1.8


class TemperatureType(OpenIntEnum):
    """Temperature Type 0x2A1D: where the temperature was taken. Unknown codes are kept."""

    ARMPIT = 1
    BODY = 2
    EAR = 3
    FINGER = 4
    GASTROINTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9


@dataclass(frozen=True)
class TemperatureTypeValue:
    """The Temperature Type characteristic 0x2A1D: one byte."""

    location: TemperatureType

    def __post_init__(self) -> None:
        check_range(_TYPE, "type", int(self.location), 0, 0xFF)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        return cls(TemperatureType(read_single(data, _TYPE, Reader.u8, "type")))

    def __bytes__(self) -> bytes:
        return u8(self.location)


class MeasurementFlags(enum.IntFlag, boundary=enum.KEEP):
    """Flags byte of the Temperature Measurement."""

    FAHRENHEIT = 0x01
    TIMESTAMP = 0x02
    TEMPERATURE_TYPE = 0x04


@dataclass(frozen=True)
class DateTime:
    """Date Time 0x2A08 (7 bytes): ``year(u16) month day hours minutes seconds``.

    Year 0, month 0 and day 0 mean "not known", as in the SIG definition.
    """

    year: int
    month: int
    day: int
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    def __post_init__(self) -> None:
        if self.year != 0:
            check_range(_DATE_TIME, "year", self.year, _YEAR_MIN, _YEAR_MAX)
        check_range(_DATE_TIME, "month", self.month, 0, 12)
        check_range(_DATE_TIME, "day", self.day, 0, 31)
        check_range(_DATE_TIME, "hours", self.hours, 0, 23)
        check_range(_DATE_TIME, "minutes", self.minutes, 0, 59)
        check_range(_DATE_TIME, "seconds", self.seconds, 0, 59)

    @classmethod
    def from_datetime(cls, when: dt.datetime) -> Self:
        """From a datetime's wall-clock fields (the characteristic carries no time zone)."""
        return cls(when.year, when.month, when.day, when.hour, when.minute, when.second)

    @classmethod
    def read(cls, reader: Reader) -> Self:
        """Read 7 bytes from a frame."""
        year = reader.u16("year")
        month, day, hours, minutes, seconds = reader.take(5, "date-time")
        with decoding(reader.protocol):
            return cls(year, month, day, hours, minutes, seconds)

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        reader = Reader(data, _DATE_TIME)
        value = cls.read(reader)
        reader.end()
        return value

    def __bytes__(self) -> bytes:
        return u16(self.year) + bytes(
            (self.month, self.day, self.hours, self.minutes, self.seconds)
        )


@dataclass(frozen=True)
class TemperatureMeasurement:
    """Temperature Measurement 0x2A1C / Intermediate Temperature 0x2A1E."""

    temperature: MedFloat32
    fahrenheit: bool = False
    timestamp: DateTime | None = None
    temperature_type: TemperatureType | None = None

    def __post_init__(self) -> None:
        if self.temperature_type is not None:
            check_range(_MEASUREMENT, "temperature type", int(self.temperature_type), 0, 0xFF)

    @classmethod
    def from_celsius(
        cls,
        celsius: float,
        *,
        timestamp: DateTime | None = None,
        temperature_type: TemperatureType | None = None,
    ) -> Self:
        """A Celsius measurement with two decimals (trailing zeros dropped)."""
        return cls(MedFloat32.from_float(celsius), False, timestamp, temperature_type)

    @property
    def flags(self) -> MeasurementFlags:
        """The flags byte this measurement is sent with."""
        flags = MeasurementFlags(0)
        if self.fahrenheit:
            flags |= MeasurementFlags.FAHRENHEIT
        if self.timestamp is not None:
            flags |= MeasurementFlags.TIMESTAMP
        if self.temperature_type is not None:
            flags |= MeasurementFlags.TEMPERATURE_TYPE
        return flags

    @property
    def celsius(self) -> float:
        """The temperature in degrees Celsius (converted from Fahrenheit when flagged).

        NaN for NaN/NRes, +/-inf for the infinities.
        """
        value = self.temperature.to_float()
        if self.fahrenheit:
            return (value - _FAHRENHEIT_OFFSET) / _FAHRENHEIT_PER_CELSIUS
        return value

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        reader = Reader(data, _MEASUREMENT)
        flags = MeasurementFlags(reader.u8("flags"))
        raw = reader.u32("temperature")
        try:
            temperature = MedFloat32.from_raw(raw)
        except DecodeError as exc:  # pragma: no cover - every 32-bit pattern is a FLOAT
            raise DecodeError(_MEASUREMENT, "temperature", exc.problem) from exc
        timestamp = DateTime.read(reader) if MeasurementFlags.TIMESTAMP in flags else None
        kind = (
            TemperatureType(reader.u8("temperature type"))
            if MeasurementFlags.TEMPERATURE_TYPE in flags
            else None
        )
        reader.end()
        return cls(temperature, MeasurementFlags.FAHRENHEIT in flags, timestamp, kind)

    def __bytes__(self) -> bytes:
        out = u8(self.flags) + bytes(self.temperature)
        if self.timestamp is not None:
            out += bytes(self.timestamp)
        if self.temperature_type is not None:
            out += u8(self.temperature_type)
        return out


@dataclass(frozen=True)
class MeasurementInterval:
    """Measurement Interval 0x2A21: uint16 seconds between measurements, 0 = none."""

    seconds: int

    def __post_init__(self) -> None:
        check_range(_INTERVAL, "seconds", self.seconds, 0, 0xFFFF, unit="s")

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        return cls(read_single(data, _INTERVAL, Reader.u16, "seconds"))

    def __bytes__(self) -> bytes:
        return u16(self.seconds)
