"""Device firmware as pure state transitions: lease, flags, self-protection, run cap, timer.

These call the cores with explicit clock times (no radio, no asyncio); the GATT tests check
the same behaviour end to end.
"""

from __future__ import annotations

import math

import pytest

from drivers.codecs import open_profile as op
from simulators.devices.mat_core import MatCore
from simulators.devices.percussion_core import GunCore
from simulators.devices.thermal_core import ThermalCore
from simulators.faults import FaultBook, SensorDrift, SensorNan, StuckHeater
from simulators.physics import GunParams

Flags = op.StatusFlags


def mode_of(core: ThermalCore) -> op.ThermalMode:
    """The mode now (a call, so the type checker does not narrow it across commands)."""
    return core.mode


def flags_of(core: ThermalCore | GunCore) -> op.StatusFlags:
    """The flags now."""
    return core.flags


def contrast(book: FaultBook | None = None, now: float = 0.0) -> ThermalCore:
    return ThermalCore(
        heat_range_c=(30.0, 45.0), cold_range_c=(5.0, 25.0), faults=book or FaultBook(), now=now
    )


def heat(celsius: float, lease_ms: int = 3000) -> bytes:
    return bytes(op.ThermalStart.heat(celsius, lease_ms))


def rejected(core: ThermalCore | GunCore, data: bytes, now: float) -> int:
    with pytest.raises(op.CommandRejectedError) as info:
        core.command(data, now)
    return int(info.value.att_error)


def test_start_runs_until_the_lease_runs_out() -> None:
    core = contrast()
    core.command(heat(42.0, lease_ms=2500), 10.0)
    assert core.state_frame(10.0) == op.ThermalState(op.ThermalMode.HEAT, 4200, 2500, Flags(0))
    core.advance(12.499)
    assert mode_of(core) == op.ThermalMode.HEAT
    assert core.state_frame(12.0).lease_remaining_ms == 500
    core.advance(12.5)
    assert mode_of(core) == op.ThermalMode.OFF
    assert flags_of(core) == Flags.LEASE_EXPIRED
    assert core.state_frame(13.0) == op.ThermalState(flags=Flags.LEASE_EXPIRED)


def test_renewals_keep_it_on_and_renew_while_off_is_refused() -> None:
    core = contrast()
    core.command(heat(40.0, 3000), 0.0)
    for t in range(1, 60):
        core.command(bytes(op.LeaseRenew(3000)), float(t))
    core.advance(61.0)
    assert mode_of(core) == op.ThermalMode.HEAT
    assert core.thermal.plate_c > 38.0
    core.advance(62.0)
    assert mode_of(core) == op.ThermalMode.OFF
    assert rejected(core, bytes(op.LeaseRenew(1000)), 63.0) == op.AttError.NOT_PERMITTED_IN_STATE


def test_leases_are_refused_above_five_seconds_not_clamped() -> None:
    core = contrast()
    too_long = bytes([op.Opcode.START, op.ThermalMode.HEAT]) + (4000).to_bytes(2, "little")
    too_long += (5001).to_bytes(2, "little")
    assert rejected(core, too_long, 0.0) == op.AttError.LEASE_TOO_LONG
    assert mode_of(core) == op.ThermalMode.OFF


def test_capabilities_refuse_modes_and_setpoints_outside_the_hardware() -> None:
    heat_only = ThermalCore(heat_range_c=(30.0, 45.0), cold_range_c=None, faults=FaultBook(), now=0)
    assert (
        rejected(heat_only, bytes(op.ThermalStart.cold(12.0)), 0.0)
        == op.AttError.MODE_NOT_SUPPORTED
    )
    assert rejected(heat_only, heat(46.0), 0.0) == op.AttError.VALUE_OUT_OF_RANGE
    assert rejected(heat_only, b"\x02\x01", 0.0) == op.AttError.INVALID_ATTRIBUTE_VALUE_LENGTH
    assert rejected(heat_only, b"\x7f", 0.0) == op.AttError.OPCODE_NOT_SUPPORTED
    assert mode_of(heat_only) == op.ThermalMode.OFF


def test_a_refused_mode_is_named_as_such_not_as_a_setpoint_out_of_range() -> None:
    heat_only = ThermalCore(heat_range_c=(30.0, 45.0), cold_range_c=None, faults=FaultBook(), now=0)
    cold_only = ThermalCore(heat_range_c=None, cold_range_c=(5.0, 25.0), faults=FaultBook(), now=0)
    with pytest.raises(op.CommandRejectedError) as cooling:
        heat_only.command(bytes(op.ThermalStart.cold(12.0)), 0.0)
    assert str(cooling.value) == (
        "Refusing open profile control-point write, mode: this device cannot cool; "
        "answer it with ATT error 0x85 (MODE_NOT_SUPPORTED)."
    )
    with pytest.raises(op.CommandRejectedError) as heating:
        cold_only.command(heat(40.0), 0.0)
    assert "mode: this device cannot heat;" in str(heating.value)
    with pytest.raises(op.CommandRejectedError) as too_hot:  # a setpoint refusal keeps its words
        heat_only.command(heat(46.0), 0.0)
    assert "setpoint: outside the device's range; answer it with ATT error 0x81" in str(
        too_hot.value
    )


def test_off_and_start_manage_the_event_flags() -> None:
    core = contrast()
    core.command(heat(40.0, 1000), 0.0)
    core.advance(2.0)
    assert flags_of(core) == Flags.LEASE_EXPIRED
    core.command(heat(40.0, 1000), 2.0)  # an accepted START clears event flags
    assert flags_of(core) == Flags(0)
    core.link_lost(2.5)
    assert mode_of(core) == op.ThermalMode.OFF
    assert flags_of(core) == Flags.LINK_LOST
    core.command(bytes(op.ClearFlags()), 3.0)
    assert flags_of(core) == Flags(0)


def test_sensor_fault_turns_the_output_off_and_start_is_refused_until_cleared() -> None:
    book = FaultBook()
    core = contrast(book)
    core.command(heat(42.0), 0.0)
    book.schedule(SensorNan(at=1.0, duration=4.0), now=0.0)
    core.advance(1.5)
    assert mode_of(core) == op.ThermalMode.OFF
    assert Flags.SENSOR_FAULT in core.flags
    assert core.plate_frame(1.5).celsius is None
    assert rejected(core, heat(42.0), 2.0) == op.AttError.FAULT_ACTIVE
    core.command(bytes(op.ClearFlags()), 3.0)  # condition still present: stays latched
    assert Flags.SENSOR_FAULT in core.flags
    core.command(bytes(op.ClearFlags()), 6.0)
    assert flags_of(core) == Flags(0)
    core.command(heat(42.0), 6.0)
    assert mode_of(core) == op.ThermalMode.HEAT


def test_a_drifting_sensor_is_reported_but_not_noticed_by_the_device() -> None:
    book = FaultBook()
    core = contrast(book)
    book.schedule(SensorDrift(rate=2.0), now=0.0)
    core.advance(60.0)
    assert core.thermal.plate_c == pytest.approx(33.0)
    assert core.plate_frame(60.0).celsius == pytest.approx(35.0)
    assert flags_of(core) == Flags(0)


def test_stuck_heater_keeps_heating_after_off_and_the_device_says_so() -> None:
    book = FaultBook()
    core = contrast(book)
    book.schedule(StuckHeater(), now=0.0)
    core.command(heat(40.0), 0.0)
    core.command(bytes(op.OutputOff()), 1.0)
    assert mode_of(core) == op.ThermalMode.OFF
    assert Flags.STUCK_OUTPUT in core.flags
    core.advance(120.0)
    assert core.thermal.plate_c > 45.0  # running away towards the heater's own limit
    assert Flags.OVER_TEMPERATURE in core.flags
    assert core.physical_drive().mode.value == "heat"


def test_a_silent_stuck_heater_shows_only_in_the_temperature() -> None:
    book = FaultBook()
    core = contrast(book)
    book.schedule(StuckHeater(silent=True, duration=60.0), now=0.0)
    core.command(heat(40.0, 1000), 0.0)
    core.advance(30.0)  # the lease expired long ago, the plate still climbs
    assert mode_of(core) == op.ThermalMode.OFF
    assert flags_of(core) == Flags.LEASE_EXPIRED
    assert core.thermal.plate_c > 40.0
    core.advance(600.0)  # the fault ended at 60 s: the plate cools again
    assert core.physical_drive().mode.value == "off"
    assert core.thermal.plate_c < 40.0


def test_low_battery_stops_the_output_with_a_supply_fault() -> None:
    core = contrast()
    core.battery_pct = 2.001
    core.command(bytes(op.ThermalStart.cold(10.0, 5000)), 0.0)
    assert mode_of(core) == op.ThermalMode.COLD
    core.advance(1.0)  # a Peltier plate at full power drains 0.03 %/s
    assert mode_of(core) == op.ThermalMode.OFF
    assert Flags.SUPPLY_FAULT in core.flags
    assert rejected(core, bytes(op.ThermalStart.cold(10.0)), 1.0) == op.AttError.FAULT_ACTIVE


def gun(book: FaultBook | None = None) -> GunCore:
    return GunCore(
        faults=book or FaultBook(),
        now=0.0,
        capabilities=op.PercussionCapabilities(min_ppm=1200, max_ppm=3200, max_run_cap_s=1200),
        params=GunParams(max_speed_ppm=3200),
    )


def test_gun_run_cap_stops_the_motor_however_often_the_lease_is_renewed() -> None:
    core = gun()
    core.command(bytes(op.PercussionStart(speed_ppm=2400, run_cap_s=10, lease_ms=2000)), 0.0)
    core.advance(1.0)
    assert 0 < core.motor.speed_ppm <= 2400
    for t in range(1, 10):
        core.command(bytes(op.LeaseRenew(2000)), float(t))
    state = core.state_frame(9.5)
    assert (state.running, state.target_ppm, state.run_time_s, state.run_cap_s) == (
        True,
        2400,
        9,
        10,
    )
    core.advance(10.0)
    assert not core.running
    assert flags_of(core) == Flags.RUN_CAP_REACHED
    core.advance(12.0)
    assert core.measurement_frame().measured_ppm == 0


def test_a_gun_names_the_run_cap_when_that_is_what_it_refuses() -> None:
    core = gun()
    with pytest.raises(op.CommandRejectedError) as too_long:
        core.command(bytes(op.PercussionStart(speed_ppm=2000, run_cap_s=1201)), 0.0)
    assert "run_cap_s: longer than the device's 1200 s;" in str(too_long.value)
    with pytest.raises(op.CommandRejectedError) as too_fast:
        core.command(bytes(op.PercussionStart(speed_ppm=4000, run_cap_s=60)), 0.0)
    assert "speed_ppm: outside the device's range;" in str(too_fast.value)


def test_gun_refuses_speeds_outside_its_range_and_stalls_under_too_much_force() -> None:
    core = gun()
    start = bytes(op.PercussionStart(speed_ppm=4000, run_cap_s=60))
    assert rejected(core, start, 0.0) == op.AttError.VALUE_OUT_OF_RANGE
    core.command(bytes(op.PercussionStart(speed_ppm=2000, run_cap_s=60)), 0.0)
    core.press(100.0, 1.0)
    assert core.measurement_frame().load_percent == round(100 * 100 / GunParams().stall_force_n)
    core.press(300.0, 1.5)
    assert not core.running
    assert Flags.OVERLOAD in core.flags
    core.press(0.0, 2.0)
    core.command(bytes(op.ClearFlags()), 2.0)
    assert flags_of(core) == Flags(0)


def test_theragun_style_gun_keeps_running_without_a_lease_and_after_link_loss() -> None:
    core = GunCore(faults=FaultBook(), now=0.0, capabilities=None, stop_on_link_loss=False)
    core.set_speed(2400, 0.0)
    core.link_lost(5.0)
    core.advance(600.0)
    assert core.running
    assert core.motor.speed_ppm == pytest.approx(2400)
    assert core.battery_pct < 100.0
    core.set_speed(0, 601.0)
    assert not core.running


def test_mat_heats_to_its_level_and_its_timer_switches_it_off() -> None:
    core = MatCore(faults=FaultBook(), now=0.0)
    core.set_level(7, 0.0)
    core.set_timer(1, 0.0)
    core.advance(1800.0)
    assert core.thermal.plate_c == pytest.approx(42.0, abs=0.05)
    assert core.timer_report_hours(1800.0) == 1
    core.advance(3600.0)
    assert core.level == 0
    assert core.timer_report_hours(3600.0) == 0
    core.advance(7200.0)
    assert core.thermal.plate_c < 34.0
    assert not math.isnan(core.thermal.skin_c)


def test_a_stuck_mat_keeps_heating_after_level_zero() -> None:
    book = FaultBook()
    core = MatCore(faults=book, now=0.0)
    book.schedule(StuckHeater(), now=0.0)
    core.set_level(1, 0.0)
    core.set_level(0, 1.0)
    core.advance(600.0)
    assert core.level == 0
    assert core.thermal.plate_c > 45.0


def test_single_mode_pads_resting_on_skin_are_not_in_fault_and_start() -> None:
    # A cold-only pad rests at skin temperature (33 °C), above its 5-25 °C range: that is not
    # over-temperature, and it must accept COLD; likewise a heat-only pad resting cool.
    cold_only = ThermalCore(heat_range_c=None, cold_range_c=(5.0, 25.0), faults=FaultBook(), now=0)
    heat_only = ThermalCore(heat_range_c=(30.0, 45.0), cold_range_c=None, faults=FaultBook(), now=0)
    for core, start in (
        (cold_only, op.ThermalStart.cold(12.0, 3000)),
        (heat_only, op.ThermalStart.heat(42.0, 3000)),
    ):
        core.advance(1.0)
        assert flags_of(core) == Flags(0)
        core.command(bytes(start), 1.0)
        assert mode_of(core) == start.mode
