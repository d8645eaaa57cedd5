"""Fault descriptions, scenario files and the per-device fault book (pure, no radio)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from simulators.catalog import FaultKind
from simulators.faults import (
    AttErrorFault,
    BatteryDies,
    DelayNotifications,
    Disconnect,
    DropNotifications,
    FaultBook,
    FaultNotSupportedError,
    LinkLatency,
    RefuseConnections,
    ScenarioError,
    SensorDrift,
    SensorNan,
    StuckHeater,
    check_supported,
    load_scenario,
    parse_scenario,
)

EXAMPLE = """\
name = "link trouble during contrast"
description = "the contrast pad drops its link two minutes in"

[[device]]
key = "skin-probe"
placed_under = "heat-pad"

[[device]]
key = "massage-gun"
battery = 15

[[fault]]
device = "contrast-pad"
kind = "disconnect"
at = 120.0

[[fault]]
device = "contrast-pad"
kind = "refuse_connections"
at = 120.5
duration = 10
hide = true

[[fault]]
device = "skin-probe"
kind = "sensor_drift"
rate = -0.5

[[fault]]
device = "massage-gun"
kind = "att_error"
count = 2
code = 0x81
"""


def test_scenario_file_parses_into_typed_faults(tmp_path: Path) -> None:
    path = tmp_path / "scenario.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.name == "link trouble during contrast"
    assert [f.kind for f in scenario.fault] == [
        "disconnect",
        "refuse_connections",
        "sensor_drift",
        "att_error",
    ]
    first, refuse, drift, att = scenario.fault
    assert isinstance(first, Disconnect)
    assert first.device == "contrast-pad"
    assert first.at == 120.0
    assert isinstance(refuse, RefuseConnections)
    assert (refuse.duration, refuse.hide) == (10.0, True)
    assert isinstance(drift, SensorDrift)
    assert drift.rate == -0.5
    assert isinstance(att, AttErrorFault)
    assert (att.count, att.code) == (2, 0x81)
    assert scenario.device[0].placed_under == "heat-pad"
    assert scenario.device[1].battery == 15


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[fault]]\ndevice = "contrast-pad"\nkind = "disconnect"\nwhen = 3\n',
            r"line 1 \(\[\[fault\]\] #1\): when: Extra inputs are not permitted",
        ),
        (
            'name = "x"\n\n[[fault]]\ndevice = "heat-pad"\nkind = "disconnect"\n\n'
            '[[fault]]\ndevice = "heat-pad"\nkind = "delay_notifications"\ndelay = -1\n',
            r"line 7 \(\[\[fault\]\] #2\): delay: Input should be greater than 0",
        ),
        (
            '[[fault]]\ndevice = "toaster"\nkind = "disconnect"\n',
            r"line 1 \(\[\[fault\]\] #1\): device: unknown device 'toaster'; use one of",
        ),
        (
            '[[fault]]\ndevice = "massage-gun"\nkind = "stuck_heater"\n',
            r"line 1 .*massage-gun simulator cannot have a stuck_heater fault",
        ),
        (
            '[[fault]]\nkind = "disconnect"\n',
            r"line 1 .*must name its device",
        ),
        (
            '[[fault]]\ndevice = "heat-pad"\nkind = "explode"\n',
            r"line 1 .*kind",
        ),
        ('colour = "red"\n', r"colour: Extra inputs are not permitted"),
        ("[[fault]\n", r"is not valid TOML"),
        (
            '[[device]]\nkey = "heat-pad"\nplaced_under = "cold-pad"\n',
            r"line 1 \(\[\[device\]\] #1\).*only a skin probe",
        ),
    ],
)
def test_bad_scenarios_say_where_and_what(text: str, expected: str) -> None:
    with pytest.raises(ScenarioError, match=expected):
        parse_scenario(text, source="bad.toml")


def test_a_missing_scenario_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="Cannot read the fault scenario"):
        load_scenario(tmp_path / "nope.toml")


def test_fault_models_are_strict() -> None:
    with pytest.raises(ValidationError):
        Disconnect(at=-1.0)
    with pytest.raises(ValidationError):
        SensorDrift(rate=0.0)
    with pytest.raises(ValidationError):
        LinkLatency(latency=5.0)
    with pytest.raises(ValidationError, match="unknown device"):
        Disconnect(device="toaster")
    assert LinkLatency().latency == pytest.approx(0.0075)


def test_catalog_decides_which_device_can_have_which_fault() -> None:
    check_supported("contrast-pad", StuckHeater())
    check_supported("skin-probe", SensorNan())
    with pytest.raises(FaultNotSupportedError, match="theragun simulator cannot have"):
        check_supported("theragun", SensorNan())


def test_fault_windows_open_and_close_on_clock_time() -> None:
    book = FaultBook()
    book.schedule(SensorNan(at=10.0, duration=5.0), now=100.0)
    assert not book.is_active(FaultKind.SENSOR_NAN, 109.9)
    assert book.is_active(FaultKind.SENSOR_NAN, 110.0)
    assert book.is_active(FaultKind.SENSOR_NAN, 114.9)
    assert not book.is_active(FaultKind.SENSOR_NAN, 115.0)
    assert book.next_change(100.0) == 110.0
    assert book.next_change(110.0) == 115.0
    assert book.next_change(115.0) is None
    assert math.isnan(book.sensor_reading(36.0, 112.0))
    assert book.sensor_reading(36.0, 116.0) == 36.0


def test_sensor_drift_grows_with_time() -> None:
    book = FaultBook()
    book.schedule(SensorDrift(rate=1.5), now=0.0)
    assert book.sensor_reading(30.0, 0.0) == pytest.approx(30.0)
    assert book.sensor_reading(30.0, 120.0) == pytest.approx(33.0)


def test_att_errors_are_consumed_one_write_at_a_time() -> None:
    book = FaultBook()
    book.schedule(AttErrorFault(count=2, code=0x80, at=1.0), now=0.0)
    assert book.take_att_error(0.5) is None
    assert book.take_att_error(1.0) == 0x80
    assert book.take_att_error(1.5) == 0x80
    assert book.take_att_error(2.0) is None
    assert FaultKind.ATT_ERROR not in book.active_kinds(2.0)


def test_one_shot_faults_fire_once() -> None:
    book = FaultBook()
    book.schedule(Disconnect(at=5.0), now=0.0)
    book.schedule(BatteryDies(at=7.0), now=0.0)
    assert book.due_one_shots(4.0) == []
    assert [f.kind for f in book.due_one_shots(5.0)] == [FaultKind.DISCONNECT]
    assert book.due_one_shots(6.0) == []
    assert book.next_change(6.0) == 7.0
    assert [f.kind for f in book.due_one_shots(8.0)] == [FaultKind.BATTERY_DIES]
    assert book.active_kinds(8.0) == {FaultKind.DISCONNECT, FaultKind.BATTERY_DIES}


def test_notification_faults_are_deterministic() -> None:
    def drops(seed: int) -> list[bool]:
        book = FaultBook()
        book.schedule(DropNotifications(probability=0.5, seed=seed), now=0.0)
        return [book.drop_notification(1.0) for _ in range(40)]

    assert drops(7) == drops(7)
    assert 0 < sum(drops(7)) < 40
    book = FaultBook()
    book.schedule(DelayNotifications(delay=2.5, duration=10.0), now=0.0)
    assert book.notification_delay(1.0) == 2.5
    assert book.notification_delay(11.0) == 0.0
    book.schedule(LinkLatency(latency=0.0075), now=0.0)
    assert book.link_latency(3.0) == pytest.approx(0.0075)
    book.schedule(RefuseConnections(duration=1.0, at=3.0), now=0.0)
    assert book.refusing(2.0) is None
    assert book.refusing(3.5) is not None
