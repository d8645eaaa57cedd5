"""Heating-mat codec: complement-checked value packets, levels, timer, reports."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.codecs import heating_mat as mat
from drivers.codecs.errors import DecodeError, EncodeError

# github.com/101Sean/hass_ble_heatingmat __init__.py: CONFIG_SCHEMA default init_packet_hex.
INIT_PACKET = bytes.fromhex("a5 5a ff ff")
# docs/protocols.md / homebridge-heatingmat index.js: timer off is [0, 255, 0, 255].
TIMER_OFF = bytes.fromhex("00 FF 00 FF")
# Value packet [v, 0xFF-v, v, 0xFF-v] (createControlPacket in both sources): level 3 = 38 degC.
LEVEL_3 = bytes.fromhex("03 FC 03 FC")
LEVEL_OFF = bytes.fromhex("00 FF 00 FF")
# hass ble_manager.py: 0x12 on 0xFF20 asks for the state.
STATUS_REQUEST = bytes.fromhex("12 ED 12 ED")
TIMER_12H = bytes.fromhex("0C F3 0C F3")
# A level-5 report as both sources parse it (value in byte 3, complement in byte 2).
REPORT_LEVEL_5 = bytes.fromhex("FA 05 FA 05")


def test_published_frames() -> None:
    assert mat.DEFAULT_INIT_PACKET == INIT_PACKET
    assert bytes(mat.InitPacket()) == INIT_PACKET
    assert bytes(mat.TimerCommand(0)) == TIMER_OFF
    assert bytes(mat.TimerCommand(12)) == TIMER_12H
    assert bytes(mat.LevelCommand(3)) == LEVEL_3
    assert bytes(mat.LevelCommand.off()) == LEVEL_OFF
    assert bytes(mat.StatusRequest()) == STATUS_REQUEST


def test_levels_map_to_36_to_42_degrees() -> None:
    assert [mat.celsius_for_level(n) for n in range(8)] == [None, 36, 37, 38, 39, 40, 41, 42]
    assert mat.level_for_celsius(38) == 3
    assert mat.LevelCommand(7).celsius == 42
    assert mat.LevelCommand(0).celsius is None
    with pytest.raises(EncodeError):
        mat.level_for_celsius(43)
    with pytest.raises(EncodeError):
        mat.celsius_for_level(8)


def test_device_side_decodes_level_writes_and_status_requests() -> None:
    assert mat.decode_level_write(LEVEL_3) == mat.LevelCommand(3)
    assert mat.decode_level_write(STATUS_REQUEST) == mat.StatusRequest()
    assert mat.TimerCommand.from_bytes(TIMER_OFF) == mat.TimerCommand(0)
    assert mat.InitPacket.from_bytes(INIT_PACKET) == mat.InitPacket(INIT_PACKET)


@pytest.mark.parametrize(
    "data",
    [
        "03 FC 03 FD",  # last complement wrong
        "03 FB 03 FC",  # first complement wrong
        "03 FC 04 FB",  # value repeated differently
        "03 FC 03",  # short
        "03 FC 03 FC 00",  # long
        "08 F7 08 F7",  # level 8 does not exist
    ],
)
def test_bad_level_writes_are_decode_errors(data: str) -> None:
    with pytest.raises(DecodeError):
        mat.decode_level_write(bytes.fromhex(data))


def test_timer_above_12_hours_is_refused() -> None:
    with pytest.raises(DecodeError):
        mat.TimerCommand.from_bytes(bytes.fromhex("0D F2 0D F2"))
    with pytest.raises(EncodeError):
        mat.TimerCommand(13)


def test_reports_take_the_value_from_byte_three() -> None:
    report = mat.MatReport.from_bytes(REPORT_LEVEL_5)
    assert report.value == 5
    assert report.lead == b"\xfa\x05"
    assert mat.MatReport.of(5) == report
    # Bytes 0-1 are not understood: any lead is kept as is; extra bytes are ignored.
    odd = mat.MatReport.from_bytes(bytes.fromhex("12 34 FC 03 99"))
    assert (odd.value, odd.lead) == (3, b"\x12\x34")
    with pytest.raises(DecodeError):
        mat.MatReport.from_bytes(bytes.fromhex("FA 05 FA 06"))
    with pytest.raises(DecodeError):
        mat.MatReport.from_bytes(bytes.fromhex("FA 05 FA"))


def test_init_packet_length_limits() -> None:
    with pytest.raises(DecodeError):
        mat.InitPacket.from_bytes(b"")
    with pytest.raises(EncodeError):
        mat.InitPacket(bytes(21))


def test_uuids_and_names() -> None:
    assert mat.SERVICE_UUID == "0000ff01-0000-1000-8000-00805f9b34fb"
    assert mat.AUTH_UUID == "0000ff10-0000-1000-8000-00805f9b34fb"
    assert mat.LEVEL_UUID == "0000ff20-0000-1000-8000-00805f9b34fb"
    assert mat.TIMER_UUID == "0000ff30-0000-1000-8000-00805f9b34fb"
    assert mat.ADVERTISED_NAMES == ()  # none published: the sources bind by MAC address


FRAMES = st.one_of(
    st.builds(mat.ValuePacket, st.integers(0, 0xFF)),
    st.builds(mat.LevelCommand, st.integers(0, mat.MAX_LEVEL)),
    st.builds(mat.TimerCommand, st.integers(0, mat.MAX_TIMER_HOURS)),
    st.just(mat.StatusRequest()),
    st.builds(mat.MatReport, st.integers(0, 0xFF), st.binary(min_size=2, max_size=2)),
    st.builds(mat.InitPacket, st.binary(min_size=1, max_size=20)),
)


@settings(max_examples=300, deadline=None)
@given(FRAMES)
def test_every_valid_frame_round_trips(frame: object) -> None:
    data = bytes(frame)  # type: ignore[call-overload]
    assert type(frame).from_bytes(data) == frame  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, mat.MAX_LEVEL) | st.just(mat.STATUS_REQUEST_VALUE))
def test_every_level_write_round_trips_through_the_dispatcher(value: int) -> None:
    write = mat.StatusRequest() if value == mat.STATUS_REQUEST_VALUE else mat.LevelCommand(value)
    assert mat.decode_level_write(bytes(write)) == write
