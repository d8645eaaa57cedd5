"""The open-profile massage gun driver against the simulated gun."""

from __future__ import annotations

import pytest

from drivers.core.base import OutOfRangeError, PercussionState, SafetyClass
from drivers.open_percussion import OpenPercussionGun
from simulators.faults import Disconnect
from tests.test_drivers_harness import Sim, sim, wait_until

__all__ = ["sim"]


async def connected_gun(sim: Sim) -> OpenPercussionGun:
    gun = sim.track(
        OpenPercussionGun(sim.address("massage-gun"), backend=sim.backend, clock=sim.clock)
    )
    await gun.connect()
    return gun


async def test_connect_reads_capabilities(sim: Sim) -> None:
    gun = await connected_gun(sim)

    assert gun.info.safety_class is SafetyClass.LEASE
    assert (gun.info.kind, gun.info.driver) == ("percussion", "open-percussion")
    caps = gun.caps
    assert (caps.min_rpm, caps.max_rpm, caps.max_lease_s, caps.run_cap_s) == (
        1200,
        3200,
        5.0,
        1200.0,
    )
    assert gun.state.connected
    assert not gun.state.running


async def test_run_reports_measured_speed_and_stop_stops(sim: Sim) -> None:
    gun = await connected_gun(sim)
    seen: list[PercussionState] = []
    gun.register_callback(seen.append)

    await gun.run(2400)
    await sim.advance(5)

    device = sim.world.gun().state
    assert device.output_on
    assert device.target_speed_ppm == 2400
    assert gun.state.running
    assert gun.state.target_rpm == 2400
    assert gun.state.measured_rpm == pytest.approx(2400, abs=50)
    assert gun.state.load == 0.0
    speeds = [s.measured_rpm for s in seen if s.measured_rpm is not None]
    assert speeds[0] < 2400  # the motor ramps up: telemetry shows it

    await gun.stop()
    await sim.advance(5)
    assert not sim.world.gun().state.output_on
    assert not gun.state.running
    assert gun.state.measured_rpm == 0
    await gun.stop()  # idempotent


async def test_the_device_side_cap_ends_a_run_even_with_renewals(sim: Sim) -> None:
    gun = await connected_gun(sim)

    await gun.run(2000, run_cap_s=10)
    await sim.advance(9)
    assert gun.state.running
    await sim.advance(2)

    assert not sim.world.gun().state.output_on
    assert not gun.state.running
    assert "run-cap-reached" in gun.state.faults


async def test_the_gun_stops_itself_when_the_host_stops_renewing(sim: Sim) -> None:
    gun = await connected_gun(sim)
    await gun.run(2000)
    await sim.advance(3)

    await gun.halt()
    await sim.advance(4)

    assert not sim.world.gun().state.output_on
    assert "lease-expired" in gun.state.faults
    assert not gun.state.running


@pytest.mark.parametrize(
    ("rpm", "run_cap_s", "limit_id"),
    [
        (5000, None, None),  # faster than the gun goes
        (1000, None, None),  # slower than it goes
        (2000, 1200.0, "M1"),  # longer than the extended massage session
    ],
)
async def test_speeds_and_caps_outside_range_are_refused(
    sim: Sim, rpm: int, run_cap_s: float | None, limit_id: str | None
) -> None:
    gun = await connected_gun(sim)
    with pytest.raises(OutOfRangeError) as refused:
        await gun.run(rpm, run_cap_s=run_cap_s)
    assert refused.value.limit_id == limit_id
    assert not sim.world.gun().state.output_on


async def test_pressing_too_hard_stalls_the_motor_and_reports_overload(sim: Sim) -> None:
    gun = await connected_gun(sim)
    await gun.run(2000)
    await sim.advance(3)

    sim.world.gun().press(1000.0)
    await sim.advance(2)

    assert not gun.state.running
    assert "overload" in gun.state.faults


async def test_reconnect_after_a_drop_leaves_the_gun_stopped(sim: Sim) -> None:
    gun = await connected_gun(sim)
    await gun.run(2000)
    await sim.advance(2)

    sim.world.inject("massage-gun", Disconnect())
    await sim.advance(0.1)
    await wait_until(lambda: gun.reconnects == 1 and gun.connected)
    await sim.advance(3)

    assert not sim.world.gun().state.output_on
    assert not gun.state.running
    assert "link-lost" in gun.state.faults
