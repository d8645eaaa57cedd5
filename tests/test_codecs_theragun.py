"""Theragun Gen-4 codec: published frames, our notification layout, model facts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.codecs import theragun as tg
from drivers.codecs.errors import DecodeError, EncodeError

# Published host frames: docs/protocols.md, from buttplugio stpihkal
# (protocols/theragun; stpihkal issue #127, decompiled Android app).
SET_SPEED_2400 = bytes.fromhex("AA 70 01 03 09 60 03")
SET_SPEED_STOP = bytes.fromhex("AA 07 01 03 00 00 03")
STATUS_REQUEST = bytes.fromhex("AA 10 10 00")
VERSION_REQUEST = bytes.fromhex("AA 20 20 00")
# Our notification layout (drivers/codecs/theragun.py, docs/protocols.md): unknown bytes 0.
STATUS_RUNNING_2400 = bytes.fromhex("BB 85 10 0B 01 00 00 00 00 00 00 00 00 09 60")
VERSION_3_2_1 = bytes.fromhex("BB 6C 20 0A 00 00 00 00 00 00 00 00 01 41")


def test_published_host_frames() -> None:
    assert bytes(tg.SetSpeed(2400)) == SET_SPEED_2400
    assert bytes(tg.SetSpeed.stop()) == SET_SPEED_STOP
    assert bytes(tg.StatusRequest()) == STATUS_REQUEST
    assert bytes(tg.VersionRequest()) == VERSION_REQUEST


def test_published_write_types() -> None:
    assert tg.SetSpeed.WITH_RESPONSE
    assert tg.StatusRequest.WITH_RESPONSE
    assert not tg.VersionRequest.WITH_RESPONSE


def test_checksum_is_the_sum_from_byte_two() -> None:
    for frame in (SET_SPEED_2400, SET_SPEED_STOP, STATUS_REQUEST, VERSION_REQUEST):
        assert frame[1] == tg.checksum(frame[2:])
    assert tg.checksum(bytes([0xFF, 0x02])) == 0x01


def test_simulator_side_decodes_the_published_frames() -> None:
    assert tg.decode_command(SET_SPEED_2400) == tg.SetSpeed(2400)
    assert tg.decode_command(SET_SPEED_STOP) == tg.SetSpeed(0)
    assert tg.decode_command(STATUS_REQUEST) == tg.StatusRequest()
    assert tg.decode_command(VERSION_REQUEST) == tg.VersionRequest()


def test_status_notification_fields_sit_where_the_source_says() -> None:
    frame = bytes(tg.StatusNotification(running=True, rpm=2400))
    assert frame == STATUS_RUNNING_2400
    assert frame[4] == 1
    assert frame[13] << 8 | frame[14] == 2400
    assert tg.decode_notification(frame) == tg.StatusNotification(True, 2400)


def test_version_notification_fields_sit_where_the_source_says() -> None:
    version = tg.VersionNotification.from_parts(3, 2, 1)
    frame = bytes(version)
    assert frame == VERSION_3_2_1
    assert frame[12] << 8 | frame[13] == 321
    decoded = tg.decode_notification(frame)
    assert isinstance(decoded, tg.VersionNotification)
    assert (decoded.major, decoded.minor, decoded.patch, decoded.text) == (3, 2, 1, "3.2.1")


def test_longer_device_frames_are_accepted_when_the_checksum_holds() -> None:
    body = bytes.fromhex("10 0B 02 00 00 00 00 00 00 00 00 07 08 AB CD")
    frame = bytes([0xBB, tg.checksum(body)]) + body
    status = tg.StatusNotification.from_bytes(frame)
    assert status == tg.StatusNotification(True, 0x0708)


def test_unknown_notification_types_are_kept_not_rejected() -> None:
    body = bytes.fromhex("30 02 12 34")
    frame = bytes([0xBB, tg.checksum(body)]) + body
    decoded = tg.decode_notification(frame)
    assert decoded == tg.UnknownNotification(0x30, b"\x12\x34")
    assert bytes(decoded) == frame


def _framed(header: int, body: str) -> bytes:
    """A frame with a correct checksum, so each malformed case below has one fault only."""
    raw = bytes.fromhex(body)
    return bytes([header, tg.checksum(raw)]) + raw


STATUS_BODY = "10 0B 01 00 00 00 00 00 00 00 00 09 60"


@pytest.mark.parametrize(
    "frame",
    [
        bytes([0xBB, 0x86]) + bytes.fromhex(STATUS_BODY),  # bad checksum (0x85 is right)
        _framed(0xAA, STATUS_BODY),  # host header on a notification
        _framed(0xBB, STATUS_BODY[:-3]),  # one byte short
        _framed(0xBB, "20 0A 00 00 00 00 00 00 00 00 01"),  # version one byte short
        b"\xbb",
        b"",
    ],
)
def test_malformed_notifications_are_decode_errors(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        tg.decode_notification(frame)


@pytest.mark.parametrize(
    "frame",
    [
        bytes.fromhex("AA 71 01 03 09 60 03"),  # bad checksum (0x70 is right)
        _framed(0xAA, "01 03 09 60 04"),  # unknown trailer
        _framed(0xAA, "01 03 0E 21 03"),  # 3617 rpm: above every model
        _framed(0xAA, "01 02 09 60 03"),  # wrong length byte
        _framed(0xAA, "01 03 09 60 03 00"),  # trailing byte
        _framed(0xAA, "30 00"),  # unknown command type
        _framed(0xAA, "10 01 00"),  # status request with a payload
        _framed(0xBB, "10 00"),  # device header on a command
    ],
)
def test_malformed_commands_are_decode_errors(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        tg.decode_command(frame)


def test_models_by_advertised_name() -> None:
    assert tg.model_for_name("Pro") is tg.TheragunModel.PRO
    assert tg.model_for_name("Elite") is tg.TheragunModel.ELITE
    assert tg.model_for_name("Prime") is tg.TheragunModel.PRIME
    assert tg.model_for_name("liv2") is tg.TheragunModel.PRIME
    assert tg.model_for_name("fr01") is tg.TheragunModel.WAVE_ROLLER
    assert tg.model_for_name("WaveSolo") is tg.TheragunModel.WAVE_SOLO
    assert tg.model_for_name("WaveDuo") is tg.TheragunModel.WAVE_DUO
    assert tg.model_for_name("Mini") is None
    assert tg.model_for_name(None) is None


def test_per_model_speed_ranges() -> None:
    assert tg.MAX_RPM == 3616
    assert tg.SetSpeed.for_model(tg.TheragunModel.PRO, 3616).rpm == 3616
    assert tg.SetSpeed.for_model(tg.TheragunModel.PRIME, 3584).rpm == 3584
    with pytest.raises(EncodeError):
        tg.SetSpeed.for_model(tg.TheragunModel.PRIME, 3585)
    with pytest.raises(EncodeError):
        tg.SetSpeed.for_model(tg.TheragunModel.WAVE_DUO, 1000)  # level byte not published
    with pytest.raises(EncodeError):
        tg.SetSpeed(3617)
    with pytest.raises(EncodeError):
        tg.SetSpeed(-1)


def test_version_parts_are_range_checked() -> None:
    with pytest.raises(EncodeError):
        tg.VersionNotification.from_parts(1, 10, 0)
    with pytest.raises(EncodeError):
        tg.VersionNotification(0x10000)


def test_uuids() -> None:
    assert tg.SERVICE_UUID == "0000ffe0-0000-1000-8000-00805f9b34fb"
    assert tg.NOTIFY_UUID == "0000ffe1-0000-1000-8000-00805f9b34fb"
    assert tg.COMMAND_UUID == "0000ffe2-0000-1000-8000-00805f9b34fb"


FRAMES = st.one_of(
    st.builds(tg.SetSpeed, st.integers(0, tg.MAX_RPM)),
    st.just(tg.StatusRequest()),
    st.just(tg.VersionRequest()),
    st.builds(tg.StatusNotification, st.booleans(), st.integers(0, 0xFFFF)),
    st.builds(tg.VersionNotification, st.integers(0, 0xFFFF)),
    st.builds(
        tg.UnknownNotification,
        st.integers(0, 0xFF).filter(lambda t: t not in (0x10, 0x20)),
        st.binary(max_size=30),
    ),
)


@settings(max_examples=300, deadline=None)
@given(FRAMES)
def test_every_valid_frame_round_trips(frame: object) -> None:
    data = bytes(frame)  # type: ignore[call-overload]
    assert type(frame).from_bytes(data) == frame  # type: ignore[attr-defined]
    if data[0] == tg.DEVICE_HEADER:
        assert tg.decode_notification(data) == frame
    else:
        assert tg.decode_command(data) == frame
