"""Bluetooth SIG assigned numbers and the small SIG characteristics relieve uses.

Battery Level (0x2A19), Environmental Sensing Temperature (0x2A6E) and the Device Information
strings (0x2A29, 0x2A24, 0x2A25, 0x2A26, 0x2A27). The Health Thermometer lives in
:mod:`drivers.codecs.sig_thermometer`, the IEEE-11073 FLOAT in :mod:`drivers.codecs.ieee11073`.

Why our own codec and not PyPI ``bluetooth-sig``: we need about ten characteristics, each a
few lines, and the same frames must be produced by the simulators; a small module we test
byte for byte (including every malformed input) is less to trust and to pin than a broad
third-party library whose API and error behaviour we would have to wrap anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Self

from drivers.codecs.errors import DecodeError, EncodeError
from drivers.codecs.wire import (
    ATT_MAX_VALUE_LENGTH,
    S16_MAX,
    BytesLike,
    Reader,
    check_range,
    decoding,
    optional_s16,
    read_single,
    u8,
)

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BATTERY_SERVICE_UUID",
    "CCCD_UUID",
    "DEVICE_INFORMATION_SERVICE_UUID",
    "DEVICE_INFORMATION_STRING_UUIDS",
    "ENVIRONMENTAL_SENSING_SERVICE_UUID",
    "FIRMWARE_REVISION_UUID",
    "HARDWARE_REVISION_UUID",
    "HEALTH_THERMOMETER_SERVICE_UUID",
    "INTERMEDIATE_TEMPERATURE_UUID",
    "MANUFACTURER_NAME_UUID",
    "MEASUREMENT_INTERVAL_UUID",
    "MODEL_NUMBER_UUID",
    "SERIAL_NUMBER_UUID",
    "TEMPERATURE_MEASUREMENT_UUID",
    "TEMPERATURE_TYPE_UUID",
    "TEMPERATURE_UUID",
    "BatteryLevel",
    "DeviceInfoString",
    "EnvironmentalTemperature",
    "sig_uuid",
]

_SIG_BASE: Final = "0000{:04x}-0000-1000-8000-00805f9b34fb"


def sig_uuid(short_id: int) -> str:
    """The full 128-bit UUID string (lower case, as bleak uses it) of a 16-bit SIG UUID."""
    check_range("SIG UUID", "short id", short_id, 0, 0xFFFF)
    return _SIG_BASE.format(short_id)


# Services
HEALTH_THERMOMETER_SERVICE_UUID: Final = sig_uuid(0x1809)
ENVIRONMENTAL_SENSING_SERVICE_UUID: Final = sig_uuid(0x181A)
BATTERY_SERVICE_UUID: Final = sig_uuid(0x180F)
DEVICE_INFORMATION_SERVICE_UUID: Final = sig_uuid(0x180A)

# Characteristics and descriptors
TEMPERATURE_MEASUREMENT_UUID: Final = sig_uuid(0x2A1C)
TEMPERATURE_TYPE_UUID: Final = sig_uuid(0x2A1D)
INTERMEDIATE_TEMPERATURE_UUID: Final = sig_uuid(0x2A1E)
MEASUREMENT_INTERVAL_UUID: Final = sig_uuid(0x2A21)
TEMPERATURE_UUID: Final = sig_uuid(0x2A6E)
BATTERY_LEVEL_UUID: Final = sig_uuid(0x2A19)
MANUFACTURER_NAME_UUID: Final = sig_uuid(0x2A29)
MODEL_NUMBER_UUID: Final = sig_uuid(0x2A24)
SERIAL_NUMBER_UUID: Final = sig_uuid(0x2A25)
FIRMWARE_REVISION_UUID: Final = sig_uuid(0x2A26)
HARDWARE_REVISION_UUID: Final = sig_uuid(0x2A27)
CCCD_UUID: Final = sig_uuid(0x2902)

DEVICE_INFORMATION_STRING_UUIDS: Final = {
    MANUFACTURER_NAME_UUID: "manufacturer",
    MODEL_NUMBER_UUID: "model",
    SERIAL_NUMBER_UUID: "serial number",
    FIRMWARE_REVISION_UUID: "firmware revision",
    HARDWARE_REVISION_UUID: "hardware revision",
}
"""Device Information string characteristics and what they hold."""

_BATTERY = "SIG Battery Level"
_TEMPERATURE = "SIG Temperature (0x2A6E)"
_DIS = "SIG Device Information string"
_CENTI = "x 0.01 degC"
_ES_MIN: Final = -27315  # -273.15 degC: the characteristic's documented minimum


@dataclass(frozen=True)
class BatteryLevel:
    """Battery Level 0x2A19: uint8 percent, 0..100."""

    percent: int

    def __post_init__(self) -> None:
        check_range(_BATTERY, "percent", self.percent, 0, 100, unit="%")

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        percent = read_single(data, _BATTERY, Reader.u8, "percent")
        with decoding(_BATTERY):
            return cls(percent)

    def __bytes__(self) -> bytes:
        return u8(self.percent)


@dataclass(frozen=True)
class EnvironmentalTemperature:
    """Temperature 0x2A6E: sint16 in 0.01 degC; 0x8000 = not known (None).

    Example: 21.50 degC is ``66 08``.
    """

    centi: int | None

    def __post_init__(self) -> None:
        if self.centi is not None:
            check_range(_TEMPERATURE, "temperature", self.centi, _ES_MIN, S16_MAX, unit=_CENTI)

    @classmethod
    def from_celsius(cls, celsius: float | None) -> Self:
        """From degrees Celsius, rounded to 0.01 (None = not known)."""
        if celsius is None:
            return cls(None)
        if not math.isfinite(celsius):
            raise EncodeError(_TEMPERATURE, "temperature", f"{celsius!r} is not a temperature")
        return cls(round(celsius * 100))

    @property
    def celsius(self) -> float | None:
        """Degrees Celsius, or None when not known."""
        return None if self.centi is None else self.centi / 100

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        centi = read_single(data, _TEMPERATURE, Reader.optional_s16, "temperature")
        with decoding(_TEMPERATURE):
            return cls(centi)

    def __bytes__(self) -> bytes:
        return optional_s16(self.centi)


@dataclass(frozen=True)
class DeviceInfoString:
    """A Device Information string (0x2A29, 0x2A24, 0x2A25, 0x2A26, 0x2A27): UTF-8, no NUL.

    Some devices pad with trailing NUL bytes; the decoder strips them.
    """

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise EncodeError(_DIS, "text", f"{self.text!r} is not a string")
        if "\x00" in self.text:
            raise EncodeError(_DIS, "text", "the string contains a NUL character")
        try:
            length = len(self.text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise EncodeError(_DIS, "text", "the string is not encodable as UTF-8") from exc
        check_range(_DIS, "length", length, 0, ATT_MAX_VALUE_LENGTH, unit="bytes")

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Self:
        """Decode; raises :class:`~drivers.codecs.errors.DecodeError`."""
        raw = Reader(data, _DIS).rest().rstrip(b"\x00")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(_DIS, "text", f"invalid UTF-8 at byte {exc.start}") from exc
        with decoding(_DIS):
            return cls(text)

    def __bytes__(self) -> bytes:
        return self.text.encode("utf-8")
