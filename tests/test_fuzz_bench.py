"""benchmarks/fuzz.py: a small run over every interface, and proof its detector catches failures."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import strategies as st

from benchmarks import fuzz
from drivers.codecs import heating_mat as hm
from drivers.codecs import open_profile as op
from drivers.core.clock import VirtualClock
from profiles.errors import RelieveError
from simulators.devices.gatt import Properties, SimCharacteristic
from simulators.devices.heating_mat import SimHeatingMat
from simulators.devices.open_thermal import OpenThermalPad
from simulators.world import build_device

EXAMPLES = 50


class _TypedError(RelieveError):
    pass


def _interface(call: Callable[[Any], object]) -> fuzz.Interface:
    return fuzz.Interface("bad", st.binary(max_size=8), call, (_TypedError,))


def test_a_small_run_covers_every_interface_without_failures() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = fuzz.main(["--examples", str(EXAMPLES), "--json"])
    results = json.loads(out.getvalue())
    assert [r["name"] for r in results] == list(fuzz.INTERFACES)
    assert {r["name"]: r["failure_kinds"] for r in results if r["failures"]} == {}
    assert all(r["examples"] == EXAMPLES for r in results)
    assert all(r["accepted"] + r["rejected"] == EXAMPLES for r in results)
    assert status == 0


def _raises_key_error(data: bytes) -> None:
    raise KeyError(data)


def _two_line_message(data: bytes) -> None:
    raise _TypedError("first line\nsecond line")


def _empty_message(data: bytes) -> None:
    raise _TypedError("")


def _wrong_accept(data: bytes) -> None:
    raise fuzz.UnacceptedError("plan over H2")


@pytest.mark.parametrize(
    "bad", [_raises_key_error, _two_line_message, _empty_message, _wrong_accept]
)
def test_the_detector_catches_a_bad_function(bad: Callable[[Any], object]) -> None:
    kind, detail = fuzz.judge(_interface(bad), b"x")
    assert kind == "failure"
    assert detail
    result = fuzz.fuzz(_interface(bad), 20, 0)
    assert result.failures == result.examples == 20
    assert result.first_input is not None
    assert result.first_error is not None


def test_the_detector_passes_a_clean_function() -> None:
    def clean(data: bytes) -> None:
        if data[:1] == b"\x00":
            raise _TypedError("starts with a zero byte; send something else")

    assert fuzz.judge(_interface(clean), b"\x00")[0] == "rejected"
    assert fuzz.judge(_interface(clean), b"a")[0] == "accepted"
    result = fuzz.fuzz(_interface(clean), 20, 0)
    assert result.failures == 0
    assert result.examples == 20


def test_a_failure_makes_the_exit_status_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fuzz.INTERFACES, "daemon-request", lambda: _interface(_raises_key_error))
    with contextlib.redirect_stdout(io.StringIO()):
        assert fuzz.main(["--examples", "5", "--interface", "daemon-request"]) == 1


def test_failures_are_grouped_by_kind() -> None:
    result = fuzz.Result("x")
    result.add_failure(b"\x82", "UnicodeDecodeError: 'utf-8' codec can't decode byte 0x82")
    result.add_failure(b"\xe7", "UnicodeDecodeError: 'utf-8' codec can't decode bytes 0-1")
    result.add_failure("a", "accepted but wrong: heat-pad, the output is on: after writing 02")
    assert result.failures == 3
    assert [(k["kind"], k["count"]) for k in result.failure_kinds] == [
        ("UnicodeDecodeError", 2),
        ("accepted but wrong: heat-pad, the output is on", 1),
    ]
    assert result.first_input == repr(b"\x82")


# --- simulated devices ----------------------------------------------------------------------


def _write_judged(key: str, steps: list[tuple[str, bytes, float]]) -> tuple[str, str | None]:
    kind, detail = fuzz.judge(fuzz.sim_device_writes(), (key, steps))
    return str(kind), detail


def test_a_device_write_is_accepted_or_refused_with_its_att_error() -> None:
    start = bytes(op.ThermalStart.heat(40.0))
    assert _write_judged("contrast-pad", [(op.THERMAL_CONTROL_POINT_UUID, start, 0.0)]) == (
        "accepted",
        None,
    )
    # a heat pad cannot cool; a renewal after the lease ran out finds the output OFF
    cold = bytes(op.ThermalStart.cold(15.0))
    assert _write_judged("heat-pad", [(op.THERMAL_CONTROL_POINT_UUID, cold, 0.0)])[0] == "rejected"
    renew = [
        (op.THERMAL_CONTROL_POINT_UUID, start, 0.0),
        (op.THERMAL_CONTROL_POINT_UUID, b"\x03\x88\x13", 5.0),
    ]
    assert _write_judged("contrast-pad", renew)[0] == "rejected"
    with pytest.raises(fuzz.DeviceRefusedError, match="0x08"):  # the mat wants its init packet
        fuzz.play_writes("heating-mat", [(hm.LEVEL_UUID, bytes(hm.LevelCommand(3)), 0.0)])


def test_the_device_limit_check_catches_an_output_beyond_its_limits() -> None:
    pad = build_device("heat-pad", clock=VirtualClock())
    assert isinstance(pad, OpenThermalPad)
    assert fuzz.device_problems(pad, 0.0) == []
    pad.core.mode = op.ThermalMode.HEAT
    pad.core.setpoint_centi = 6000
    pad.core.lease_deadline = 30.0
    problems = fuzz.device_problems(pad, 0.0)
    assert any("lease" in p for p in problems)
    assert any("60.0" in p for p in problems)
    mat = build_device("heating-mat", clock=VirtualClock())
    assert isinstance(mat, SimHeatingMat)
    mat.core.level = 9
    assert fuzz.device_problems(mat, 0.0) == ["level 9"]


def test_an_accepted_command_beyond_the_checked_limit_is_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = bytes(op.PercussionStart(2400, run_cap_s=600))
    steps = [(op.PERCUSSION_CONTROL_POINT_UUID, start, 0.0)]
    assert _write_judged("massage-gun", steps) == ("accepted", None)
    monkeypatch.setattr(fuzz, "GUN_MAX_PPM", 2000)  # as if the gun took more than it may
    kind, detail = _write_judged("massage-gun", steps)
    assert kind == "failure"
    assert detail is not None
    assert "running at 2400 ppm" in detail


def test_a_write_handler_that_raises_is_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    def broken(data: bytes) -> None:
        raise KeyError(data)

    characteristic = SimCharacteristic(
        op.THERMAL_CONTROL_POINT_UUID, Properties.WRITE, label="broken", write=broken
    )
    with pytest.raises(fuzz.DeviceCrashError, match="KeyError"):
        fuzz.write_characteristic(characteristic, b"\x01")
    refusing = SimCharacteristic(op.THERMAL_STATE_UUID, Properties.READ, label="state")
    refusal = fuzz.write_characteristic(refusing, b"\x01")
    assert refusal is not None
    assert refusal.code == 0x03  # Write Not Permitted


# --- scenario files -------------------------------------------------------------------------

SCENARIO = """
[[device]]
key = "skin-probe"
placed_under = "heat-pad"

[[fault]]
device = "massage-gun"
kind = "link_latency"
latency = 0.5
duration = 10
"""


def test_an_accepted_scenario_is_applied_and_its_limits_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    interface = fuzz.scenario_file()
    assert fuzz.judge(interface, SCENARIO) == ("accepted", None)
    assert fuzz.judge(interface, SCENARIO.replace("0.5", "2.5"))[0] == "rejected"
    monkeypatch.setattr(fuzz, "MAX_LINK_LATENCY_S", 0.1)  # as if the world took too much
    kind, detail = fuzz.judge(interface, SCENARIO)
    assert kind == "failure"
    assert detail is not None
    assert "link latency" in detail


# --- the daemon's line splitter -------------------------------------------------------------


def test_the_line_model() -> None:
    assert fuzz.expected_lines(b"ab\ncd", 8) == [b"ab"]
    assert fuzz.expected_lines(b"abcdefghij", 4) == [None]
    assert fuzz.expected_lines(b"abcdefghij\n\nx\n", 4) == [None, b"", b"x"]
    fuzz.split_lines(4, [b"ab", b"cdefg", b"hij\n\nx", b"\n"])


def test_a_splitter_that_merges_lines_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    class Merging:
        def __init__(self, limit: int) -> None:
            self.limit = limit

        def feed(self, data: bytes) -> list[bytes | None]:
            return [data.replace(b"\n", b"")] if b"\n" in data else []

    monkeypatch.setattr(fuzz, "LineSplitter", Merging)
    with pytest.raises(fuzz.UnacceptedError, match="lost or merged"):
        fuzz.split_lines(16, [b"a\nb\n"])
    assert fuzz.fuzz(fuzz.line_splitter(), 20, 0).failures > 0


# --- argument type functions ----------------------------------------------------------------


def test_argument_types_are_judged_against_their_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    interface = fuzz.cli_types()
    assert fuzz.judge(interface, ("_fleet_timeout", "60")) == ("accepted", None)
    assert fuzz.judge(interface, ("_fleet_timeout", "0")) == ("rejected", None)
    assert fuzz.judge(interface, ("_sim_tcp", "127.0.0.1:9100")) == ("accepted", None)
    monkeypatch.setitem(fuzz.TYPE_LIMITS, "_fleet_timeout", fuzz._within(0, 10))
    kind, detail = fuzz.judge(interface, ("_fleet_timeout", "60"))
    assert kind == "failure"
    assert detail is not None
    assert "beyond its limits" in detail
