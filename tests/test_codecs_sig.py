"""SIG codecs: IEEE-11073 FLOAT, Health Thermometer, ES Temperature, Battery, Device Info."""

from __future__ import annotations

import datetime as dt
import math
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.codecs import sig_common as sig
from drivers.codecs.errors import DecodeError, EncodeError
from drivers.codecs.ieee11073 import (
    MANTISSA_MAX,
    MANTISSA_MIN,
    NAN,
    NEGATIVE_INFINITY,
    NRES,
    POSITIVE_INFINITY,
    MedFloat32,
)
from drivers.codecs.sig_thermometer import (
    DateTime,
    MeasurementInterval,
    TemperatureMeasurement,
    TemperatureType,
    TemperatureTypeValue,
)

# --- vectors -------------------------------------------------------------------------------
# docs/protocols.md, SIG codecs (Health Thermometer example, Bluetooth SIG HTS): 37.5 degC, Celsius,
# no time stamp, no type.
TM_37_5_C = bytes.fromhex("00 77 01 00 FF")
# docs/protocols.md, SIG codecs (Environmental Sensing Temperature 0x2A6E): 21.50 degC.
ES_21_50 = bytes.fromhex("66 08")
ES_NOT_KNOWN = bytes.fromhex("00 80")  # 0x8000, "value is not known" (GSS 0x2A6E)
# IEEE 11073-20601 reserved FLOAT values (docs/protocols.md, SIG codecs), little-endian.
FLOAT_NAN = bytes.fromhex("FF FF 7F 00")  # 0x007FFFFF
FLOAT_NRES = bytes.fromhex("00 00 80 00")  # 0x00800000
FLOAT_POS_INF = bytes.fromhex("FE FF 7F 00")  # 0x007FFFFE
FLOAT_NEG_INF = bytes.fromhex("02 00 80 00")  # 0x00800002
FLOAT_RESERVED = bytes.fromhex("01 00 80 00")  # 0x00800001
# Hand-built from the 2A1C layout (flags 0x06: time stamp + type; 36.6 degC = 366e-1;
# 2024-05-01 12:30:00; type 4 = finger).
TM_36_6_STAMPED_FINGER = bytes.fromhex("06 6E 01 00 FF E8 07 05 01 0C 1E 00 04")
# 98.6 degF = 986e-1, flags 0x01.
TM_98_6_F = bytes.fromhex("01 DA 03 00 FF")


def test_float_example_from_the_thermometer_spec() -> None:
    value = MedFloat32.from_bytes(TM_37_5_C[1:])
    assert value == MedFloat32(375, -1)
    assert value.to_float() == 37.5
    assert bytes(MedFloat32.from_float(37.5)) == TM_37_5_C[1:]


@pytest.mark.parametrize(
    ("data", "special", "as_float"),
    [
        (FLOAT_NAN, NAN, math.nan),
        (FLOAT_NRES, NRES, math.nan),
        (FLOAT_POS_INF, POSITIVE_INFINITY, math.inf),
        (FLOAT_NEG_INF, NEGATIVE_INFINITY, -math.inf),
        (FLOAT_RESERVED, MedFloat32(-0x7FFFFF), math.nan),
    ],
)
def test_float_special_values(data: bytes, special: MedFloat32, as_float: float) -> None:
    decoded = MedFloat32.from_bytes(data)
    assert decoded == special
    assert decoded.is_special
    assert not decoded.is_finite
    assert bytes(special) == data
    result = decoded.to_float()
    assert (math.isnan(result) and math.isnan(as_float)) or result == as_float


def test_float_from_special_python_floats() -> None:
    assert MedFloat32.from_float(math.nan) == NAN
    assert MedFloat32.from_float(math.inf) == POSITIVE_INFINITY
    assert MedFloat32.from_float(-math.inf) == NEGATIVE_INFINITY


def test_float_negative_mantissa_and_exponent() -> None:
    # -12.34 = -1234e-2 -> mantissa 0xFFFB2E, exponent 0xFE
    assert bytes(MedFloat32.from_float(-12.34)) == bytes.fromhex("2E FB FF FE")
    assert MedFloat32.from_bytes(bytes.fromhex("2E FB FF FE")).to_float() == -12.34


def test_float_from_float_drops_trailing_zeros_and_scales_large_values() -> None:
    assert MedFloat32.from_float(100.0) == MedFloat32(100, 0)
    assert MedFloat32.from_float(0.0) == MedFloat32(0, 0)
    assert MedFloat32.from_float(36.6) == MedFloat32(366, -1)
    assert MedFloat32.from_float(1.005, decimals=3) == MedFloat32(1005, -3)
    big = MedFloat32.from_float(1e12)
    assert abs(big.mantissa) <= MANTISSA_MAX
    assert big.to_float() == 1e12


def test_float_range_errors() -> None:
    with pytest.raises(EncodeError):
        MedFloat32(0x800000, 0)
    with pytest.raises(EncodeError):
        MedFloat32(1, 128)
    with pytest.raises(EncodeError):
        MedFloat32.from_float(1e140)
    with pytest.raises(DecodeError):
        MedFloat32.from_bytes(b"\x00\x00\x00")


def test_temperature_measurement_vector() -> None:
    measurement = TemperatureMeasurement.from_bytes(TM_37_5_C)
    assert measurement.celsius == 37.5
    assert not measurement.fahrenheit
    assert measurement.timestamp is None
    assert measurement.temperature_type is None
    assert bytes(TemperatureMeasurement.from_celsius(37.5)) == TM_37_5_C


def test_temperature_measurement_with_time_stamp_and_type() -> None:
    measurement = TemperatureMeasurement.from_bytes(TM_36_6_STAMPED_FINGER)
    assert measurement.celsius == 36.6
    assert measurement.timestamp == DateTime(2024, 5, 1, 12, 30, 0)
    assert measurement.temperature_type == TemperatureType.FINGER
    built = TemperatureMeasurement.from_celsius(
        36.6,
        timestamp=DateTime.from_datetime(dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)),
        temperature_type=TemperatureType.FINGER,
    )
    assert bytes(built) == TM_36_6_STAMPED_FINGER


def test_fahrenheit_measurement_converts_to_celsius() -> None:
    measurement = TemperatureMeasurement.from_bytes(TM_98_6_F)
    assert measurement.fahrenheit
    assert measurement.celsius == pytest.approx(37.0)


def test_reserved_flag_bits_are_ignored() -> None:
    measurement = TemperatureMeasurement.from_bytes(b"\xf8" + TM_37_5_C[1:])
    assert measurement.celsius == 37.5


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x77\x01\x00",  # FLOAT cut short
        b"\x02\x77\x01\x00\xff\xe8\x07\x05",  # time stamp flagged but cut short
        b"\x04\x77\x01\x00\xff",  # type flagged but missing
        b"\x00\x77\x01\x00\xff\x02",  # trailing byte
        b"\x02\x77\x01\x00\xff\xe8\x07\x0d\x01\x00\x00\x00",  # month 13
    ],
)
def test_malformed_measurements_are_decode_errors(data: bytes) -> None:
    with pytest.raises(DecodeError):
        TemperatureMeasurement.from_bytes(data)


def test_temperature_type_tolerates_unknown_codes() -> None:
    assert TemperatureTypeValue.from_bytes(b"\x03").location == TemperatureType.EAR
    unknown = TemperatureTypeValue.from_bytes(b"\x63")
    assert int(unknown.location) == 0x63
    assert not unknown.location.is_known
    assert bytes(unknown) == b"\x63"


def test_measurement_interval() -> None:
    assert MeasurementInterval.from_bytes(b"\x3c\x00") == MeasurementInterval(60)
    assert bytes(MeasurementInterval(0)) == b"\x00\x00"
    with pytest.raises(EncodeError):
        MeasurementInterval(70000)


def test_environmental_temperature_vectors() -> None:
    assert sig.EnvironmentalTemperature.from_bytes(ES_21_50).celsius == 21.5
    assert bytes(sig.EnvironmentalTemperature.from_celsius(21.50)) == ES_21_50
    assert sig.EnvironmentalTemperature.from_bytes(ES_NOT_KNOWN).centi is None
    assert bytes(sig.EnvironmentalTemperature(None)) == ES_NOT_KNOWN
    assert sig.EnvironmentalTemperature.from_bytes(b"\x2e\xfb").celsius == -12.34
    with pytest.raises(DecodeError):  # below absolute zero
        sig.EnvironmentalTemperature.from_bytes((-27316).to_bytes(2, "little", signed=True))
    with pytest.raises(EncodeError):
        sig.EnvironmentalTemperature.from_celsius(math.inf)


def test_battery_level() -> None:
    assert sig.BatteryLevel.from_bytes(b"\x64").percent == 100
    assert bytes(sig.BatteryLevel(42)) == b"\x2a"
    with pytest.raises(DecodeError):
        sig.BatteryLevel.from_bytes(b"\x65")
    with pytest.raises(EncodeError):
        sig.BatteryLevel(-1)


def test_device_information_strings() -> None:
    assert sig.DeviceInfoString.from_bytes("Wärme 1.2".encode()).text == "Wärme 1.2"
    assert sig.DeviceInfoString.from_bytes(b"relieve\x00\x00").text == "relieve"
    assert bytes(sig.DeviceInfoString("Pad-1")) == b"Pad-1"
    with pytest.raises(DecodeError):
        sig.DeviceInfoString.from_bytes(b"\xff\xfe")
    with pytest.raises(EncodeError):
        sig.DeviceInfoString("x" * 513)
    with pytest.raises(EncodeError):
        sig.DeviceInfoString("a\x00b")


def test_standard_uuids_are_full_128_bit_strings() -> None:
    assert sig.sig_uuid(0x2A1C) == "00002a1c-0000-1000-8000-00805f9b34fb"
    assert sig.HEALTH_THERMOMETER_SERVICE_UUID == "00001809-0000-1000-8000-00805f9b34fb"
    assert sig.BATTERY_LEVEL_UUID == "00002a19-0000-1000-8000-00805f9b34fb"
    assert sig.TEMPERATURE_UUID == "00002a6e-0000-1000-8000-00805f9b34fb"
    assert set(sig.DEVICE_INFORMATION_STRING_UUIDS) == {
        sig.sig_uuid(n) for n in (0x2A29, 0x2A24, 0x2A25, 0x2A26, 0x2A27)
    }


# --- round trips ---------------------------------------------------------------------------

FLOATS = st.builds(MedFloat32, st.integers(-0x800000, 0x7FFFFF), st.integers(-128, 127))
DATE_TIMES = st.builds(
    DateTime,
    st.just(0) | st.integers(1582, 9999),
    st.integers(0, 12),
    st.integers(0, 31),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)
SIG_FRAMES = st.one_of(
    FLOATS,
    DATE_TIMES,
    st.builds(
        TemperatureMeasurement,
        FLOATS,
        st.booleans(),
        st.none() | DATE_TIMES,
        st.none() | st.integers(0, 255).map(TemperatureType),
    ),
    st.builds(TemperatureTypeValue, st.integers(0, 255).map(TemperatureType)),
    st.builds(MeasurementInterval, st.integers(0, 0xFFFF)),
    st.builds(sig.EnvironmentalTemperature, st.none() | st.integers(-27315, 0x7FFF)),
    st.builds(sig.BatteryLevel, st.integers(0, 100)),
    st.builds(
        sig.DeviceInfoString,
        st.text(
            st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40
        ),
    ),
)


@settings(max_examples=300, deadline=None)
@given(SIG_FRAMES)
def test_every_valid_sig_frame_round_trips(frame: object) -> None:
    data = bytes(frame)  # type: ignore[call-overload]
    assert type(frame).from_bytes(data) == frame  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.integers(0, 4),
)
def test_float_from_float_rounds_once_to_the_finest_exponent_that_fits(
    value: float, decimals: int
) -> None:
    encoded = MedFloat32.from_float(value, decimals=decimals)
    assert MANTISSA_MIN <= encoded.mantissa <= MANTISSA_MAX
    assert encoded.exponent >= -decimals
    unit = 10.0**encoded.exponent
    # Half a unit of the last digit kept, plus float noise of the decimal -> binary step.
    assert abs(encoded.to_float() - value) <= 0.5 * unit + 1e-12 * max(1.0, abs(value))
    finest = Decimal(repr(value)).scaleb(decimals).to_integral_value(ROUND_HALF_EVEN)
    if abs(finest) <= MANTISSA_MAX:
        # Fits at the requested precision: exactly that decimal (trailing zeros dropped).
        assert Decimal(encoded.mantissa).scaleb(encoded.exponent) == finest.scaleb(-decimals)
