"""The heating-mat driver against the simulated mat (auth first, levels, backstop timer)."""

from __future__ import annotations

import pytest

from drivers.core.base import AuthFailedError, OutOfRangeError, SafetyClass, ThermalState
from drivers.heating_mat import HeatingMat
from simulators.devices.state import DeviceState
from simulators.faults import Disconnect
from tests.test_drivers_harness import Sim, sim, wait_until

__all__ = ["sim"]


async def connected_mat(sim: Sim) -> HeatingMat:
    mat = sim.track(HeatingMat(sim.address("heating-mat"), backend=sim.backend, clock=sim.clock))
    await mat.connect()
    return mat


async def test_a_wrong_init_packet_is_an_auth_failure(sim: Sim) -> None:
    mat = HeatingMat(
        sim.address("heating-mat"), backend=sim.backend, clock=sim.clock, init_packet=b"\x01\x02"
    )
    with pytest.raises(AuthFailedError, match="--init-packet"):
        await mat.connect()
    assert not mat.connected
    assert not sim.world.mat().state.connected


async def test_connect_authorises_and_reports_a_level_only_host_timed_pad(sim: Sim) -> None:
    mat = await connected_mat(sim)

    assert sim.world.mat().authorized
    assert mat.info.safety_class is SafetyClass.HOST_TIMED
    caps = mat.caps
    assert caps.levels == (36.0, 37.0, 38.0, 39.0, 40.0, 41.0, 42.0)
    assert (caps.can_heat, caps.can_cool, caps.has_plate_sensor) == (True, False, False)
    assert caps.timer_s == 3600.0
    assert caps.max_lease_s is None
    assert mat.state.connected
    assert (mat.state.mode, mat.state.level) == ("off", 0)


async def test_heat_sets_the_backstop_timer_and_the_hottest_level_not_above(sim: Sim) -> None:
    mat = await connected_mat(sim)

    await mat.heat(41.5)
    await sim.advance(4)

    device = sim.world.mat().state
    assert device.level == 6  # 41 °C: the hottest level not above 41.5 °C
    assert device.timer_remaining_s is not None
    assert 3590 <= device.timer_remaining_s <= 3600
    assert (mat.state.mode, mat.state.level, mat.state.setpoint_celsius) == ("heat", 6, 41.0)
    assert mat.timer_hours == 1

    await mat.off()
    device = sim.world.mat().state
    assert (device.level, device.timer_remaining_s) == (0, None)
    assert (mat.state.mode, mat.state.level) == ("off", 0)


@pytest.mark.parametrize(("celsius", "limit_id"), [(35.0, None), (46.0, "H1")])
async def test_temperatures_the_mat_cannot_take_are_refused(
    sim: Sim, celsius: float, limit_id: str | None
) -> None:
    mat = await connected_mat(sim)
    with pytest.raises(OutOfRangeError) as refused:
        await mat.heat(celsius)
    assert refused.value.limit_id == limit_id
    assert sim.world.mat().state.level == 0


async def test_a_mat_cannot_cool(sim: Sim) -> None:
    mat = await connected_mat(sim)
    with pytest.raises(OutOfRangeError, match="cannot cool"):
        await mat.cool(15.0)


async def test_the_status_is_polled_while_heating(sim: Sim) -> None:
    mat = await connected_mat(sim)
    seen: list[ThermalState] = []
    mat.register_callback(seen.append)
    await mat.heat(38.0)

    await sim.advance(11)

    assert mat.state.updated_at >= sim.clock.now() - 2.0
    assert len({s.updated_at for s in seen}) >= 5
    assert "telemetry-stall" not in mat.state.faults


async def test_after_a_drop_the_mat_is_reauthorised_and_switched_off(sim: Sim) -> None:
    mat = await connected_mat(sim)
    await mat.heat(40.0)
    await sim.advance(2)
    device_states: list[DeviceState] = []
    sim.world.mat().register_callback(device_states.append)

    sim.world.inject("heating-mat", Disconnect())
    await sim.advance(0.1)
    await wait_until(lambda: mat.reconnects == 1 and mat.connected)

    alone = [d for d in device_states if not d.connected]
    assert alone
    assert alone[0].level == 5  # host-timed: without the host it keeps heating

    assert sim.world.mat().authorized
    assert sim.world.mat().state.level == 0
    assert (mat.state.mode, mat.state.level) == ("off", 0)
