"""The relieve open profile codec: spec vectors, round trips, refusals with ATT error codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.codecs import open_profile as op
from drivers.codecs.errors import DecodeError, EncodeError

GATT_PROFILE_DOC = Path(__file__).resolve().parents[1] / "docs" / "gatt-profile.md"

# --- vectors: docs/gatt-profile.md section 9 (worked example); the doc is the spec ----------
CAPS_CONTRAST_PAD = "01 03 B8 0B 94 11 F4 01 D0 07 88 13"  # heat 30..45, cold 5..20 degC
STATE_OFF_LINK_LOST = "00 00 80 00 00 00 02"
STATE_OFF = "00 00 80 00 00 00 00"
CMD_OFF = "01"
CMD_CLEAR_FLAGS = "04"
CMD_START_HEAT_42 = "02 01 68 10 B8 0B"  # HEAT 42.00 degC, lease 3000 ms
STATE_HEAT_42 = "01 68 10 B8 0B 00 00"
PLATE_25_10 = "CE 09"
PLATE_41_87 = "5B 10"
CMD_RENEW_3000 = "03 B8 0B"
CMD_START_HEAT_48 = "02 01 C0 12 B8 0B"  # refused by the pad: above its 45.00 degC
CMD_START_LEASE_6000 = "02 01 68 10 70 17"  # refused: LEASE_TOO_LONG
CMD_START_COLD_12 = "02 02 B0 04 B8 0B"
STATE_COLD_12 = "02 B0 04 B8 0B 00 00"
STATE_OFF_LEASE_EXPIRED = "00 00 80 00 00 00 01"
STATE_OFF_OVER_TEMPERATURE = "00 00 80 00 00 01 00"
THERMAL_SERVICE_UUID_LE = "76 65 69 6C 65 72 4C 8E 50 4F 56 4C 00 01 45 52"
PCAPS_GUN = "01 01 D6 06 60 09 88 13 84 03"  # 1750..2400 ppm, load sensing, cap <= 900 s
CMD_PSTART_2000 = "02 D0 07 B8 0B 78 00"  # 2000 ppm, lease 3000 ms, cap 120 s
PSTATE_RUNNING_2000 = "01 D0 07 B8 0B 00 00 78 00 00 00"
PMEAS_1994_35 = "CA 07 23"
PSTATE_RUN_CAP_REACHED = "00 00 00 00 00 00 00 00 00 00 04"

CONTRAST_PAD = op.ThermalCapabilities.from_celsius((30.0, 45.0), (5.0, 20.0))
GUN = op.PercussionCapabilities(
    min_ppm=1750,
    max_ppm=2400,
    max_run_cap_s=900,
    features=op.PercussionFeatures.LOAD_SENSING,
)

ENCODED_VECTORS: list[tuple[object, str]] = [
    (CONTRAST_PAD, CAPS_CONTRAST_PAD),
    (op.ThermalState(flags=op.StatusFlags.LINK_LOST), STATE_OFF_LINK_LOST),
    (op.ThermalState(), STATE_OFF),
    (op.OutputOff(), CMD_OFF),
    (op.ClearFlags(), CMD_CLEAR_FLAGS),
    (op.ThermalStart.heat(42.0, lease_ms=3000), CMD_START_HEAT_42),
    (op.ThermalState(op.ThermalMode.HEAT, 4200, 3000), STATE_HEAT_42),
    (op.PlateTemperature.from_celsius(25.1), PLATE_25_10),
    (op.PlateTemperature.from_celsius(41.87), PLATE_41_87),
    (op.LeaseRenew(3000), CMD_RENEW_3000),
    (op.ThermalStart.heat(48.0, lease_ms=3000), CMD_START_HEAT_48),
    (op.ThermalStart.cold(12.0, lease_ms=3000), CMD_START_COLD_12),
    (op.ThermalState(op.ThermalMode.COLD, 1200, 3000), STATE_COLD_12),
    (op.ThermalState(flags=op.StatusFlags.LEASE_EXPIRED), STATE_OFF_LEASE_EXPIRED),
    (op.ThermalState(flags=op.StatusFlags.OVER_TEMPERATURE), STATE_OFF_OVER_TEMPERATURE),
    (GUN, PCAPS_GUN),
    (op.PercussionStart(speed_ppm=2000, run_cap_s=120, lease_ms=3000), CMD_PSTART_2000),
    (op.PercussionState(True, 2000, 3000, 0, 120), PSTATE_RUNNING_2000),
    (op.PercussionMeasurement(1994, 35), PMEAS_1994_35),
    (op.PercussionState(flags=op.StatusFlags.RUN_CAP_REACHED), PSTATE_RUN_CAP_REACHED),
]


def _hex(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(("frame", "expected"), ENCODED_VECTORS)
def test_frames_encode_to_the_bytes_in_the_spec(frame: object, expected: str) -> None:
    assert bytes(frame) == _hex(expected)  # type: ignore[call-overload]


@pytest.mark.parametrize(("frame", "expected"), ENCODED_VECTORS)
def test_spec_bytes_decode_back_to_the_frame(frame: object, expected: str) -> None:
    decoded = type(frame).from_bytes(_hex(expected))  # type: ignore[attr-defined]
    assert decoded == frame


def test_every_vector_appears_in_the_spec_page() -> None:
    doc = re.sub(r"\s+", " ", GATT_PROFILE_DOC.read_text(encoding="utf-8"))
    vectors = [hex_ for _frame, hex_ in ENCODED_VECTORS]
    vectors += [CMD_START_LEASE_6000, THERMAL_SERVICE_UUID_LE]
    missing = [v for v in vectors if f"`{v}`" not in doc and f" {v} " not in doc]
    assert missing == []


def test_every_uuid_in_the_spec_table_matches_the_codec() -> None:
    doc = GATT_PROFILE_DOC.read_text(encoding="utf-8")
    for uuid in (
        op.THERMAL_SERVICE_UUID,
        op.THERMAL_CONTROL_POINT_UUID,
        op.THERMAL_STATE_UUID,
        op.PLATE_TEMPERATURE_UUID,
        op.THERMAL_CAPABILITIES_UUID,
        op.PERCUSSION_SERVICE_UUID,
        op.PERCUSSION_CONTROL_POINT_UUID,
        op.PERCUSSION_STATE_UUID,
        op.PERCUSSION_MEASUREMENT_UUID,
        op.PERCUSSION_CAPABILITIES_UUID,
    ):
        assert f"`{uuid}`" in doc


def test_uuids_derive_from_the_documented_base() -> None:
    assert op.open_uuid(0x0100) == "52450100-4c56-4f50-8e4c-72656c696576"
    assert op.open_uuid(0x0100) == op.THERMAL_SERVICE_UUID
    assert op.PERCUSSION_CAPABILITIES_UUID == "52450204-4c56-4f50-8e4c-72656c696576"
    assert {op.THERMAL_SERVICE_UUID, op.PERCUSSION_SERVICE_UUID} == op.OPEN_SERVICE_UUIDS
    le = bytes(reversed(bytes.fromhex(op.THERMAL_SERVICE_UUID.replace("-", ""))))
    assert le == _hex(THERMAL_SERVICE_UUID_LE)


def test_advertising_example_fits_31_bytes() -> None:
    name = b"RLV-PAD1"
    assert len(name) == op.MAX_ADV_NAME_BYTES
    adv = b"\x02\x01\x06" + b"\x11\x07" + _hex(THERMAL_SERVICE_UUID_LE) + b"\x09\x09" + name
    assert len(adv) == 31


# --- the device side: decoding control-point writes ----------------------------------------


def test_thermal_control_point_dispatches_each_opcode() -> None:
    assert op.decode_thermal_command(_hex(CMD_OFF)) == op.OutputOff()
    assert op.decode_thermal_command(_hex(CMD_CLEAR_FLAGS)) == op.ClearFlags()
    assert op.decode_thermal_command(_hex(CMD_RENEW_3000)) == op.LeaseRenew(3000)
    start = op.decode_thermal_command(_hex(CMD_START_COLD_12))
    assert start == op.ThermalStart(op.ThermalMode.COLD, 1200, 3000)


def test_percussion_control_point_dispatches_each_opcode() -> None:
    assert op.decode_percussion_command(_hex(CMD_OFF)) == op.OutputOff()
    assert op.decode_percussion_command(_hex(CMD_CLEAR_FLAGS)) == op.ClearFlags()
    assert op.decode_percussion_command(_hex(CMD_RENEW_3000)) == op.LeaseRenew(3000)
    assert op.decode_percussion_command(_hex(CMD_PSTART_2000)) == op.PercussionStart(2000, 120)


@pytest.mark.parametrize(
    ("write", "error"),
    [
        ("", op.AttError.INVALID_ATTRIBUTE_VALUE_LENGTH),
        ("09", op.AttError.OPCODE_NOT_SUPPORTED),
        ("00", op.AttError.OPCODE_NOT_SUPPORTED),
        ("01 00", op.AttError.INVALID_ATTRIBUTE_VALUE_LENGTH),
        ("02 01 68 10 B8", op.AttError.INVALID_ATTRIBUTE_VALUE_LENGTH),
        ("03 B8 0B 00", op.AttError.INVALID_ATTRIBUTE_VALUE_LENGTH),
        (CMD_START_LEASE_6000, op.AttError.LEASE_TOO_LONG),
        ("02 01 68 10 89 13", op.AttError.LEASE_TOO_LONG),  # 5001 ms: one above the limit
        ("03 89 13", op.AttError.LEASE_TOO_LONG),
        ("02 01 68 10 00 00", op.AttError.VALUE_OUT_OF_RANGE),  # lease 0
        ("03 00 00", op.AttError.VALUE_OUT_OF_RANGE),
        ("02 00 68 10 B8 0B", op.AttError.VALUE_OUT_OF_RANGE),  # START with mode OFF
        ("02 07 68 10 B8 0B", op.AttError.VALUE_OUT_OF_RANGE),  # unknown mode
        ("02 01 00 80 B8 0B", op.AttError.VALUE_OUT_OF_RANGE),  # setpoint "not known"
    ],
)
def test_bad_thermal_writes_are_refused_with_the_documented_att_error(
    write: str, error: op.AttError
) -> None:
    with pytest.raises(op.CommandRejectedError) as caught:
        op.decode_thermal_command(_hex(write))
    assert caught.value.att_error == error
    assert isinstance(caught.value, DecodeError)
    assert f"0x{int(error):02X}" in str(caught.value)


@pytest.mark.parametrize(
    ("write", "error"),
    [
        ("02 D0 07 B8 0B 78", op.AttError.INVALID_ATTRIBUTE_VALUE_LENGTH),
        ("02 D0 07 70 17 78 00", op.AttError.LEASE_TOO_LONG),
        ("02 00 00 B8 0B 78 00", op.AttError.VALUE_OUT_OF_RANGE),  # speed 0: use STOP
        ("02 D0 07 B8 0B 00 00", op.AttError.VALUE_OUT_OF_RANGE),  # run cap 0
        ("05", op.AttError.OPCODE_NOT_SUPPORTED),
    ],
)
def test_bad_percussion_writes_are_refused_with_the_documented_att_error(
    write: str, error: op.AttError
) -> None:
    with pytest.raises(op.CommandRejectedError) as caught:
        op.decode_percussion_command(_hex(write))
    assert caught.value.att_error == error


def test_capabilities_say_which_att_error_a_start_gets() -> None:
    assert CONTRAST_PAD.refusal(op.ThermalStart.heat(42.0)) is None
    assert CONTRAST_PAD.refusal(op.ThermalStart.heat(45.0)) is None
    assert CONTRAST_PAD.refusal(op.ThermalStart.heat(45.01)) == op.AttError.VALUE_OUT_OF_RANGE
    assert CONTRAST_PAD.refusal(op.ThermalStart.cold(4.99)) == op.AttError.VALUE_OUT_OF_RANGE
    heat_only = op.ThermalCapabilities.from_celsius((30.0, 45.0), None)
    assert heat_only.can_heat
    assert not heat_only.can_cool
    assert heat_only.refusal(op.ThermalStart.cold(12.0)) == op.AttError.MODE_NOT_SUPPORTED
    assert GUN.refusal(op.PercussionStart(2400, 900)) is None
    assert GUN.refusal(op.PercussionStart(2401, 60)) == op.AttError.VALUE_OUT_OF_RANGE
    assert GUN.refusal(op.PercussionStart(1749, 60)) == op.AttError.VALUE_OUT_OF_RANGE
    assert GUN.refusal(op.PercussionStart(2000, 901)) == op.AttError.VALUE_OUT_OF_RANGE


def test_lease_grant_is_cut_to_the_device_maximum_and_never_above_5000() -> None:
    assert op.grant_lease(3000, 5000) == 3000
    assert op.grant_lease(5000, 2000) == 2000
    with pytest.raises(EncodeError):
        op.grant_lease(5001, 5000)
    with pytest.raises(EncodeError):
        op.grant_lease(0, 5000)


def test_att_errors_have_user_phrases_and_unknown_codes_are_described() -> None:
    assert "5000 ms" in op.describe_att_error(0x83)
    assert op.describe_att_error(0x9F) == "the device refused the write with ATT error 0x9F"
    assert op.AttError(0x9F).name == "AttError[159]"  # open enum: unknown codes are kept


# --- state semantics -----------------------------------------------------------------------


def test_state_flags_split_into_faults_and_events_and_keep_unknown_bits() -> None:
    state = op.ThermalState.from_bytes(_hex("00 00 80 00 00 21 81"))
    assert state.flags == 0x8121
    assert state.faults == op.StatusFlags.OVER_TEMPERATURE | op.StatusFlags(0x20)
    assert state.events == op.StatusFlags.LEASE_EXPIRED | op.StatusFlags(0x8000)
    assert bytes(state) == _hex("00 00 80 00 00 21 81")


def test_unknown_thermal_mode_decodes_keeping_its_value_and_counts_as_on() -> None:
    state = op.ThermalState.from_bytes(_hex("07 00 80 00 00 00 00"))
    assert int(state.mode) == 7
    assert not state.mode.is_known
    assert state.is_on


def test_state_views_in_degrees() -> None:
    state = op.ThermalState.from_bytes(_hex(STATE_HEAT_42))
    assert state.is_on
    assert state.setpoint_c == 42.0
    assert op.ThermalState().setpoint_c is None
    assert op.PlateTemperature.from_bytes(_hex("00 80")).celsius is None
    assert op.PlateTemperature.from_bytes(_hex(PLATE_41_87)).celsius == 41.87


@pytest.mark.parametrize(
    "frame",
    [
        "00 68 10 00 00 00 00",  # OFF with a setpoint
        "00 00 80 B8 0B 00 00",  # OFF with a lease
        "01 00 80 B8 0B 00 00",  # HEAT without a setpoint
        "01 68 10 89 13 00 00",  # lease above 5000
        "00 00 80 00 00 00",  # short
        "00 00 80 00 00 00 00 00",  # long
    ],
)
def test_inconsistent_thermal_states_are_decode_errors(frame: str) -> None:
    with pytest.raises(DecodeError):
        op.ThermalState.from_bytes(_hex(frame))


@pytest.mark.parametrize(
    "frame",
    [
        "02 D0 07 B8 0B 00 00 78 00 00 00",  # running byte 2
        "00 D0 07 00 00 00 00 00 00 00 00",  # stopped with a speed
        "01 00 00 B8 0B 00 00 78 00 00 00",  # running at 0 ppm
        "00 00 00 00 00 00 00 00 00 00",  # short
    ],
)
def test_inconsistent_percussion_states_are_decode_errors(frame: str) -> None:
    with pytest.raises(DecodeError):
        op.PercussionState.from_bytes(_hex(frame))


def test_capabilities_of_a_later_version_may_append_fields() -> None:
    v2 = op.ThermalCapabilities.from_bytes(_hex("02" + CAPS_CONTRAST_PAD[2:] + " AA BB"))
    assert v2.version == 2
    assert v2.heat_range_centi == (3000, 4500)
    with pytest.raises(DecodeError):
        op.ThermalCapabilities.from_bytes(_hex(CAPS_CONTRAST_PAD + " AA"))
    p2 = op.PercussionCapabilities.from_bytes(_hex("02" + PCAPS_GUN[2:] + " 01"))
    assert p2.max_ppm == 2400


def test_capabilities_with_a_feature_bit_but_no_range_are_rejected() -> None:
    with pytest.raises(DecodeError):
        op.ThermalCapabilities.from_bytes(_hex("01 01 00 80 00 80 00 80 00 80 88 13"))
    with pytest.raises(DecodeError):  # neither heat nor cool
        op.ThermalCapabilities.from_bytes(_hex("01 00 00 80 00 80 00 80 00 80 88 13"))


# --- construction ranges -------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: op.ThermalStart(op.ThermalMode.HEAT, 4200, lease_ms=5001),
        lambda: op.ThermalStart(op.ThermalMode.HEAT, 4200, lease_ms=0),
        lambda: op.ThermalStart(op.ThermalMode.OFF, 4200),
        lambda: op.ThermalStart(op.ThermalMode.HEAT, -0x8000),
        lambda: op.ThermalStart.heat(float("nan")),
        lambda: op.ThermalStart.heat(400.0),
        lambda: op.LeaseRenew(6000),
        lambda: op.PercussionStart(0, 60),
        lambda: op.PercussionStart(2000, 0),
        lambda: op.PercussionStart(70000, 60),
        lambda: op.PercussionMeasurement(2000, 101),
        lambda: op.PercussionCapabilities(2400, 1750, 60),
        lambda: op.ThermalCapabilities(None, None),
        lambda: op.ThermalCapabilities((4500, 3000), None),
        lambda: op.ThermalCapabilities((3000, 4500), None, max_lease_ms=6000),
        lambda: op.ThermalState(op.ThermalMode.HEAT, None, 1000),
        lambda: op.PercussionState(running=True, target_ppm=2000),
        lambda: op.open_uuid(0x10000),
    ],
)
def test_out_of_range_construction_raises_encode_error(build: object) -> None:
    with pytest.raises(EncodeError):
        build()  # type: ignore[operator]


# --- round trips ---------------------------------------------------------------------------

SETPOINTS = st.integers(-0x7FFF, 0x7FFF)
LEASES = st.integers(1, op.LEASE_MAX_MS)
FLAGS = st.integers(0, 0xFFFF).map(op.StatusFlags)
U16 = st.integers(0, 0xFFFF)


@st.composite
def thermal_states(draw: st.DrawFn) -> op.ThermalState:
    mode = op.ThermalMode(draw(st.integers(0, 0xFF)))
    flags = draw(FLAGS)
    if mode == op.ThermalMode.OFF:
        return op.ThermalState(mode, None, 0, flags)
    setpoint = draw(SETPOINTS if mode.is_known else st.none() | SETPOINTS)
    return op.ThermalState(mode, setpoint, draw(st.integers(0, op.LEASE_MAX_MS)), flags)


@st.composite
def percussion_states(draw: st.DrawFn) -> op.PercussionState:
    flags = draw(FLAGS)
    if not draw(st.booleans()):
        return op.PercussionState(flags=flags)
    return op.PercussionState(
        True,
        draw(st.integers(1, 0xFFFF)),
        draw(st.integers(0, op.LEASE_MAX_MS)),
        draw(U16),
        draw(st.integers(1, 0xFFFF)),
        flags,
    )


@st.composite
def spans(draw: st.DrawFn) -> tuple[int, int]:
    low = draw(SETPOINTS)
    return low, draw(st.integers(low, 0x7FFF))


THERMAL_CAPS = st.builds(
    op.ThermalCapabilities,
    st.none() | spans(),
    spans(),
    st.integers(1, op.LEASE_MAX_MS),
) | st.builds(op.ThermalCapabilities, spans(), st.none(), st.integers(1, op.LEASE_MAX_MS))


@st.composite
def percussion_caps(draw: st.DrawFn) -> op.PercussionCapabilities:
    low = draw(st.integers(1, 0xFFFF))
    return op.PercussionCapabilities(
        low,
        draw(st.integers(low, 0xFFFF)),
        draw(st.integers(1, 0xFFFF)),
        draw(st.integers(1, op.LEASE_MAX_MS)),
        op.PercussionFeatures(draw(st.integers(0, 0xFF))),
    )


FRAMES = st.one_of(
    st.builds(
        op.ThermalStart,
        st.sampled_from([op.ThermalMode.HEAT, op.ThermalMode.COLD]),
        SETPOINTS,
        LEASES,
    ),
    st.builds(op.LeaseRenew, LEASES),
    st.just(op.OutputOff()),
    st.just(op.ClearFlags()),
    st.builds(op.PercussionStart, st.integers(1, 0xFFFF), st.integers(1, 0xFFFF), LEASES),
    thermal_states(),
    percussion_states(),
    st.builds(op.PlateTemperature, st.none() | SETPOINTS),
    st.builds(op.PercussionMeasurement, U16, st.none() | st.integers(0, 100)),
    THERMAL_CAPS,
    percussion_caps(),
)


@settings(max_examples=300, deadline=None)
@given(FRAMES)
def test_every_valid_frame_round_trips(frame: object) -> None:
    data = bytes(frame)  # type: ignore[call-overload]
    assert type(frame).from_bytes(data) == frame  # type: ignore[attr-defined]
    assert bytes(type(frame).from_bytes(bytearray(data))) == data  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.builds(op.ThermalStart, st.sampled_from(list(op.ThermalMode)[1:]), SETPOINTS, LEASES),
        st.builds(op.LeaseRenew, LEASES),
        st.just(op.OutputOff()),
        st.just(op.ClearFlags()),
    )
)
def test_thermal_commands_round_trip_through_the_dispatcher(command: op.ThermalCommand) -> None:
    assert op.decode_thermal_command(bytes(command)) == command
