"""Physics of the simulated devices: pure functions stepped by elapsed time."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.physics import (
    BatteryParams,
    DriveMode,
    GunParams,
    GunState,
    ThermalDrive,
    ThermalParams,
    ThermalState,
    drain_battery,
    gun_drain_rate,
    gun_speed_under_load,
    resting_thermal_state,
    skin_equilibrium,
    step_gun,
    step_thermal,
    thermal_drain_rate,
)

P = ThermalParams()
HEAT_42 = ThermalDrive(DriveMode.HEAT, 42.0)
COLD_12 = ThermalDrive(DriveMode.COLD, 12.0)
OFF = ThermalDrive()


def run(state: ThermalState, drive: ThermalDrive, seconds: float, step: float) -> ThermalState:
    for _ in range(round(seconds / step)):
        state = step_thermal(state, drive, step)
    return state


def test_a_resting_pad_stays_at_skin_temperature() -> None:
    rest = resting_thermal_state()
    assert step_thermal(rest, OFF, 3600.0) == rest
    assert rest.plate_c == pytest.approx(33.0)


def test_heating_is_bounded_by_the_heat_rate_and_settles_on_the_setpoint() -> None:
    state = resting_thermal_state()
    previous = state.plate_c
    for _ in range(600):
        state = step_thermal(state, HEAT_42, 1.0)
        assert state.plate_c - previous <= P.max_heat_rate + 1e-9
        assert state.plate_c <= 42.0 + 1e-9
        previous = state.plate_c
    assert state.plate_c == pytest.approx(42.0, abs=0.01)


def test_cooling_is_slower_than_heating() -> None:
    hot = run(resting_thermal_state(), HEAT_42, 30.0, 1.0)
    cold = run(resting_thermal_state(), COLD_12, 30.0, 1.0)
    assert hot.plate_c - 33.0 > 33.0 - cold.plate_c > 0
    # The Peltier ramp is linear at its limit while far from the target: 0.2 degC/s.
    ten = step_thermal(resting_thermal_state(), COLD_12, 10.0)
    assert 33.0 - ten.plate_c == pytest.approx(10 * P.max_cool_rate, rel=1e-6)


def test_switched_off_pad_drifts_back_to_skin_temperature() -> None:
    hot = ThermalState(plate_c=42.0, skin_c=40.0)
    later = step_thermal(hot, OFF, 1800.0)
    assert later.plate_c == pytest.approx(33.0, abs=0.05)
    assert later.skin_c == pytest.approx(33.0, abs=0.05)
    one_second = step_thermal(hot, OFF, 1.0)
    assert 42.0 - one_second.plate_c <= P.passive_max_rate + 1e-9


def test_heat_mode_below_the_plate_does_not_cool_actively() -> None:
    warm = ThermalState(plate_c=40.0, skin_c=38.0)
    drive = ThermalDrive(DriveMode.HEAT, 35.0)
    after = step_thermal(warm, drive, 1.0)
    assert 40.0 - after.plate_c <= P.passive_max_rate + 1e-9
    assert step_thermal(warm, drive, 3600.0).plate_c == pytest.approx(35.0, abs=0.01)


def test_skin_lags_the_plate_and_settles_between_plate_and_resting_skin() -> None:
    state = run(resting_thermal_state(), HEAT_42, 60.0, 1.0)
    assert 33.0 < state.skin_c < state.plate_c
    settled = step_thermal(state, HEAT_42, 3600.0)
    assert settled.skin_c == pytest.approx(skin_equilibrium(42.0), abs=0.01)
    assert 33.0 < skin_equilibrium(42.0) < 42.0
    assert 12.0 < skin_equilibrium(12.0) < 33.0


def test_one_big_step_equals_many_small_ones() -> None:
    big = step_thermal(resting_thermal_state(), HEAT_42, 120.0)
    small = run(resting_thermal_state(), HEAT_42, 120.0, 0.1)
    assert big.plate_c == pytest.approx(small.plate_c, abs=1e-6)
    assert big.skin_c == pytest.approx(small.skin_c, abs=0.02)


@settings(max_examples=60, deadline=None)
@given(
    plate=st.floats(0.0, 50.0),
    target=st.floats(5.0, 45.0),
    mode=st.sampled_from(list(DriveMode)),
    a=st.floats(0.0, 200.0),
    b=st.floats(0.0, 200.0),
)
def test_plate_steps_compose(
    plate: float, target: float, mode: DriveMode, a: float, b: float
) -> None:
    start = ThermalState(plate_c=plate, skin_c=33.0)
    drive = ThermalDrive(mode, target)
    once = step_thermal(start, drive, a + b)
    twice = step_thermal(step_thermal(start, drive, a), drive, b)
    assert once.plate_c == pytest.approx(twice.plate_c, abs=1e-6)
    assert not math.isnan(once.skin_c)


def test_physics_refuses_negative_time_and_bad_parameters() -> None:
    with pytest.raises(ValueError, match="backwards"):
        step_thermal(resting_thermal_state(), OFF, -1.0)
    with pytest.raises(ValueError, match="max_heat_rate"):
        ThermalParams(max_heat_rate=0.0)
    with pytest.raises(ValueError, match="backwards"):
        step_gun(GunState(), 2000, 0.0, -0.1)


def test_gun_ramps_up_and_sags_under_load() -> None:
    g = GunParams()
    state = step_gun(GunState(), 2400, 0.0, 0.5)
    assert state.speed_ppm == pytest.approx(0.5 * g.spin_up_ppm_per_s)
    state = step_gun(state, 2400, 0.0, 5.0)
    assert state.speed_ppm == pytest.approx(2400)
    loaded = step_gun(state, 2400, g.stall_force_n / 2, 5.0)
    assert 0 < loaded.speed_ppm < 2400
    assert loaded.speed_ppm == pytest.approx(gun_speed_under_load(2400, g.stall_force_n / 2))
    assert gun_speed_under_load(2400, g.stall_force_n) == 0.0
    stopped = step_gun(state, 0, 0.0, 0.3)
    assert stopped.speed_ppm == pytest.approx(2400 - 0.3 * g.spin_down_ppm_per_s)
    assert step_gun(state, 0, 0.0, 10.0).speed_ppm == 0.0


def test_battery_drains_faster_with_more_work() -> None:
    b = BatteryParams()
    rest = resting_thermal_state()
    idle = thermal_drain_rate(rest, OFF)
    heating = thermal_drain_rate(rest, HEAT_42)
    cooling = thermal_drain_rate(rest, COLD_12)
    assert idle == pytest.approx(b.idle)
    assert heating > idle
    assert cooling > heating  # a Peltier plate is power hungry
    holding = thermal_drain_rate(ThermalState(42.0, 40.0), HEAT_42)
    assert idle < holding < heating
    slow, fast = gun_drain_rate(1200, 0.0), gun_drain_rate(3200, 0.0)
    assert b.idle < slow < fast < gun_drain_rate(3200, 100.0)
    assert drain_battery(1.0, 0.5, 10.0) == 0.0
    assert drain_battery(50.0, 0.01, 100.0) == pytest.approx(49.0)
