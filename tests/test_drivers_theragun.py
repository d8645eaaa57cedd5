"""The Theragun Gen-4 driver against the simulated Theragun PRO (host-timed: no lease)."""

from __future__ import annotations

import logging

import pytest

from drivers.codecs import theragun as tg
from drivers.core.base import (
    DeviceError,
    DeviceRefusedError,
    NotConnectedError,
    OutOfRangeError,
    PercussionState,
    SafetyClass,
)
from drivers.theragun import Theragun
from simulators.faults import AttErrorFault, Disconnect
from tests.test_drivers_harness import Sim, sim, wait_until

__all__ = ["sim"]

# Set-speed frames as published (docs/protocols.md, from buttplugio stpihkal issue #127).
SET_2400_RPM = "aa 70 01 03 09 60 03"
STOP = "aa 07 01 03 00 00 03"


async def connected_gun(sim: Sim, *, reconnect: bool = True) -> Theragun:
    gun = sim.track(
        Theragun(sim.address("theragun"), backend=sim.backend, clock=sim.clock, reconnect=reconnect)
    )
    await gun.connect()
    return gun


async def test_connect_reads_model_version_and_status(sim: Sim) -> None:
    gun = await connected_gun(sim)

    assert gun.model is tg.TheragunModel.PRO
    assert gun.info.safety_class is SafetyClass.HOST_TIMED
    assert gun.info.firmware == "1.0.0"  # from the gun's version notification
    caps = gun.caps
    assert (caps.min_rpm, caps.max_rpm, caps.max_lease_s, caps.timer_s) == (1750, 3616, None, None)
    assert gun.state.connected
    assert not gun.state.running
    assert gun.state.measured_rpm == 0


async def test_run_sends_the_published_frame_and_parses_the_status(
    sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    gun = await connected_gun(sim)
    caplog.set_level(logging.DEBUG, logger="drivers.core.connection")

    await gun.run(2400)
    await sim.advance(1)
    status = await gun.request_status()

    assert status == tg.StatusNotification(running=True, rpm=2400)
    assert gun.state.running
    assert (gun.state.target_rpm, gun.state.measured_rpm) == (2400, 2400)
    assert sim.world.theragun().state.target_speed_ppm == 2400
    assert any(
        r.getMessage().endswith(f"<- {SET_2400_RPM} (speed 2400 rpm)") for r in caplog.records
    )

    await gun.stop()
    await sim.advance(1)
    assert not sim.world.theragun().state.output_on
    assert not gun.state.running
    assert any(r.getMessage().endswith(f"<- {STOP} (stop)") for r in caplog.records)


async def test_status_is_polled_while_running(sim: Sim) -> None:
    gun = await connected_gun(sim)
    seen: list[PercussionState] = []
    gun.register_callback(seen.append)
    await gun.run(2000)

    await sim.advance(10)

    assert gun.state.updated_at >= sim.clock.now() - 2.0
    assert len({s.updated_at for s in seen}) >= 5
    assert "telemetry-stall" not in gun.state.faults


async def test_the_gun_keeps_running_without_the_host_and_is_stopped_on_reconnect(
    sim: Sim,
) -> None:
    gun = await connected_gun(sim)
    seen: list[PercussionState] = []
    gun.register_callback(seen.append)
    await gun.run(2000)
    await sim.advance(2)

    sim.world.inject("theragun", Disconnect())
    await sim.advance(0.1)
    await wait_until(lambda: any(not s.connected for s in seen))
    lost = next(s for s in seen if not s.connected)
    assert lost.running  # host-timed: nothing stops it but us
    await wait_until(lambda: gun.reconnects == 1 and gun.connected)
    await sim.advance(1)

    assert not sim.world.theragun().state.output_on  # STOP first after reconnecting
    assert gun.state.connected
    assert not gun.state.running


async def test_stop_without_a_link_says_the_gun_still_runs(sim: Sim) -> None:
    gun = await connected_gun(sim, reconnect=False)
    await gun.run(2000)
    await sim.advance(1)
    sim.world.inject("theragun", Disconnect())
    await sim.advance(0.1)
    await wait_until(lambda: not gun.connected)

    with pytest.raises(NotConnectedError, match="stop it with its button"):
        await gun.stop()
    assert sim.world.theragun().state.output_on


@pytest.mark.parametrize("rpm", [4000, 1000])
async def test_speeds_outside_the_model_range_are_refused(sim: Sim, rpm: int) -> None:
    gun = await connected_gun(sim)
    with pytest.raises(OutOfRangeError):
        await gun.run(rpm)
    assert not sim.world.theragun().state.output_on


async def test_an_att_error_is_a_refusal(sim: Sim) -> None:
    gun = await connected_gun(sim)
    sim.world.inject("theragun", AttErrorFault(code=0x13))
    with pytest.raises(DeviceRefusedError) as refused:
        await gun.run(2000)
    assert refused.value.att_error == 0x13
    assert "Value Not Allowed" in str(refused.value)


async def test_a_wave_roller_is_refused_before_anything_is_sent(sim: Sim) -> None:
    wave = Theragun(
        sim.address("theragun"),
        backend=sim.backend,
        clock=sim.clock,
        model=tg.TheragunModel.WAVE_SOLO,
    )
    with pytest.raises(DeviceError, match="not published"):
        await wave.connect()
    assert not wave.connected
