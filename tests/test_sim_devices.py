"""The other device families over real GATT: massage gun, Theragun, heating mat, skin probe."""

from __future__ import annotations

import asyncio
import math

import pytest

from drivers.codecs import heating_mat as hm
from drivers.codecs import open_profile as op
from drivers.codecs import sig_common as sig
from drivers.codecs import sig_thermometer as ht
from drivers.codecs import theragun as tg
from drivers.core.clock import VirtualClock
from simulators.devices.central import BumbleCentral, CentralLink, GattError
from simulators.world import SimWorld

ANSWER_WITHIN_S = 2.0

# Host frames published in docs/protocols.md (buttplugio stpihkal theragun page).
SET_SPEED_2400 = bytes.fromhex("AA 70 01 03 09 60 03")
STOP = bytes.fromhex("AA 07 01 03 00 00 03")
STATUS_REQUEST = bytes.fromhex("AA 10 10 00")
VERSION_REQUEST = bytes.fromhex("AA 20 20 00")
# What the simulated PRO answers (layout of drivers/codecs/theragun.py: running = b[4],
# rpm = b[13..14] big-endian, unknown bytes zero, checksum = sum(b[2:]) & 0xFF).
STATUS_RUNNING_2400 = bytes.fromhex("BB 85 10 0B 01 00 00 00 00 00 00 00 00 09 60")
STATUS_STOPPED = bytes.fromhex("BB 1B 10 0B 00 00 00 00 00 00 00 00 00 00 00")
# Version 1.0.0 -> code 100 = 0x0064.
VERSION_1_0_0 = bytes.fromhex("BB 8E 20 0A 00 00 00 00 00 00 00 00 00 64")


async def next_value(queue: asyncio.Queue[bytes]) -> bytes:
    return await asyncio.wait_for(queue.get(), ANSWER_WITHIN_S)


async def refused(link: CentralLink, uuid: str, value: bytes) -> int:
    with pytest.raises(GattError) as info:
        async with asyncio.timeout(ANSWER_WITHIN_S):
            await link.write(uuid, value)
    return info.value.code


def speed(world: SimWorld) -> float:
    value = world.theragun().state.speed_ppm
    assert value is not None
    return value


# --- Theragun ------------------------------------------------------------------------------


async def test_theragun_answers_with_published_status_frames(
    world: SimWorld, central: BumbleCentral, clock: VirtualClock
) -> None:
    gun = await central.connect(world.theragun().address)
    frames = await gun.subscribe(tg.NOTIFY_UUID)
    await gun.write(tg.COMMAND_UUID, STATUS_REQUEST)
    assert await next_value(frames) == STATUS_STOPPED
    await gun.write(tg.COMMAND_UUID, SET_SPEED_2400)
    assert await next_value(frames) == STATUS_RUNNING_2400  # pushed on the change
    await gun.write(tg.COMMAND_UUID, STATUS_REQUEST)
    assert await next_value(frames) == STATUS_RUNNING_2400
    await gun.write(tg.COMMAND_UUID, VERSION_REQUEST, response=False)
    assert await next_value(frames) == VERSION_1_0_0
    await clock.advance(0.5)
    assert 0 < speed(world) < 2400  # still spinning up
    await clock.advance(2.0)
    assert speed(world) == pytest.approx(2400)
    await gun.write(tg.COMMAND_UUID, STOP)
    assert await next_value(frames) == STATUS_STOPPED


async def test_theragun_refuses_frames_it_cannot_parse(
    world: SimWorld, central: BumbleCentral
) -> None:
    gun = await central.connect(world.theragun().address)
    bad_checksum = bytes.fromhex("AA 71 01 03 09 60 03")
    assert await refused(gun, tg.COMMAND_UUID, bad_checksum) == 0x13
    assert await refused(gun, tg.COMMAND_UUID, b"\xaa") == 0x13
    too_fast = bytes(tg.SetSpeed(3616))[:4] + (3617).to_bytes(2, "big") + b"\x03"
    too_fast = too_fast[:1] + bytes([tg.checksum(too_fast[2:])]) + too_fast[2:]
    assert await refused(gun, tg.COMMAND_UUID, too_fast) == 0x13
    assert not world.theragun().state.output_on


async def test_theragun_is_host_timed_and_keeps_running_without_its_phone(
    world: SimWorld, central: BumbleCentral, clock: VirtualClock
) -> None:
    gun = await central.connect(world.theragun().address)
    await gun.write(tg.COMMAND_UUID, SET_SPEED_2400)
    await gun.disconnect()
    await asyncio.wait_for(gun.disconnected, ANSWER_WITHIN_S)
    await clock.advance(600.0)
    state = world.theragun().state
    assert (state.output_on, state.connected, state.lease_remaining_s) == (True, False, None)
    assert state.battery_pct < 100.0


# --- open-profile massage gun -----------------------------------------------------------------


async def test_open_gun_runs_ramps_senses_load_and_stops_at_its_cap(
    world: SimWorld, central: BumbleCentral, clock: VirtualClock
) -> None:
    link = await central.connect(world.gun().address)
    caps = op.PercussionCapabilities.from_bytes(await link.read(op.PERCUSSION_CAPABILITIES_UUID))
    assert (caps.min_ppm, caps.max_ppm) == (1200, 3200)
    states = await link.subscribe(op.PERCUSSION_STATE_UUID)
    speeds = await link.subscribe(op.PERCUSSION_MEASUREMENT_UUID)
    start = op.PercussionStart(speed_ppm=2400, run_cap_s=4, lease_ms=5000)
    await link.write(op.PERCUSSION_CONTROL_POINT_UUID, bytes(start))
    running = op.PercussionState.from_bytes(await next_value(states))
    assert (running.running, running.target_ppm, running.run_cap_s) == (True, 2400, 4)
    await clock.advance(1.0)
    first = op.PercussionMeasurement.from_bytes(await next_value(speeds))
    world.gun().press(80.0)
    await clock.advance(1.0)
    second = op.PercussionMeasurement.from_bytes(await next_value(speeds))
    assert 0 < first.measured_ppm < second.measured_ppm < 2400  # ramping, sagging under load
    assert second.load_percent == round(100 * 80.0 / 267.0)
    await clock.advance(2.0)
    stopped = op.PercussionState.from_bytes(await next_value(states))
    assert not stopped.running
    assert stopped.flags == op.StatusFlags.RUN_CAP_REACHED


# --- heating mat ------------------------------------------------------------------------------


async def test_heating_mat_refuses_commands_before_auth(
    world: SimWorld, central: BumbleCentral
) -> None:
    mat = await central.connect(world.mat().address)
    assert await refused(mat, hm.LEVEL_UUID, bytes(hm.LevelCommand(5))) == 0x08
    assert await refused(mat, hm.TIMER_UUID, bytes(hm.TimerCommand(1))) == 0x08
    assert await refused(mat, hm.AUTH_UUID, b"\x00\x01\x02\x03") == 0x08  # wrong packet
    assert world.mat().state.level == 0
    await mat.write(hm.AUTH_UUID, bytes(hm.InitPacket()))
    await mat.write(hm.LEVEL_UUID, bytes(hm.LevelCommand(5)))
    assert world.mat().state.level == 5
    assert world.mat().state.setpoint_c == 40.0


async def test_heating_mat_reports_level_and_timer_and_checks_complements(
    world: SimWorld, central: BumbleCentral, clock: VirtualClock
) -> None:
    mat = await central.connect(world.mat().address)
    await mat.write(hm.AUTH_UUID, hm.DEFAULT_INIT_PACKET)
    levels = await mat.subscribe(hm.LEVEL_UUID)
    timers = await mat.subscribe(hm.TIMER_UUID)
    await mat.write(hm.LEVEL_UUID, bytes(hm.LevelCommand(7)))
    assert hm.MatReport.from_bytes(await next_value(levels)).value == 7
    assert hm.MatReport.from_bytes(await next_value(timers)).value == 0
    await mat.write(hm.TIMER_UUID, bytes(hm.TimerCommand(1)))
    assert hm.MatReport.from_bytes(await next_value(levels)).value == 7
    assert hm.MatReport.from_bytes(await next_value(timers)).value == 1
    await mat.write(hm.LEVEL_UUID, bytes(hm.StatusRequest()))  # 12 ED 12 ED
    assert await next_value(levels) == bytes.fromhex("F8 07 F8 07")
    assert await refused(mat, hm.LEVEL_UUID, bytes.fromhex("05 FA 05 FB")) == 0x13
    assert await refused(mat, hm.LEVEL_UUID, bytes(hm.ValuePacket(8))) == 0x13
    assert await refused(mat, hm.TIMER_UUID, bytes.fromhex("01 FE")) == 0x13
    await clock.advance(1800.0)
    assert world.mat().state.plate_c == pytest.approx(42.0, abs=0.1)
    await clock.advance(1800.0)  # the one-hour timer ends the heat by itself
    assert world.mat().state.level == 0
    assert hm.MatReport.from_bytes(await mat.read(hm.LEVEL_UUID)).value == 0


async def test_heating_mat_forgets_auth_with_the_link_but_keeps_heating(
    world: SimWorld, central: BumbleCentral
) -> None:
    mat = await central.connect(world.mat().address)
    await mat.write(hm.AUTH_UUID, hm.DEFAULT_INIT_PACKET)
    await mat.write(hm.LEVEL_UUID, bytes(hm.LevelCommand(3)))
    await mat.disconnect()
    await asyncio.wait_for(mat.disconnected, ANSWER_WITHIN_S)
    assert world.mat().state.level == 3  # host-timed: nothing turns it off but its timer
    again = await central.connect(world.mat().address)
    assert await refused(again, hm.LEVEL_UUID, bytes(hm.LevelCommand.off())) == 0x08


# --- skin probe -------------------------------------------------------------------------------


async def test_probe_indicates_the_skin_temperature_of_its_pad(
    world: SimWorld, central: BumbleCentral, clock: VirtualClock
) -> None:
    pad = world.pad("contrast-pad")
    assert world.probe().state.placed_under == "contrast-pad"
    pad_link = await central.connect(pad.address)
    await pad_link.write(op.THERMAL_CONTROL_POINT_UUID, bytes(op.ThermalStart.heat(42.0, 5000)))
    for _ in range(120):
        await clock.advance(1.0)
        await pad_link.write(op.THERMAL_CONTROL_POINT_UUID, bytes(op.LeaseRenew(5000)))
    probe = await central.connect(world.probe().address)
    kind = ht.TemperatureTypeValue.from_bytes(await probe.read(sig.TEMPERATURE_TYPE_UUID))
    assert kind.location == ht.TemperatureType.BODY
    measurements = await probe.subscribe(sig.TEMPERATURE_MEASUREMENT_UUID, indicate=True)
    await clock.advance(1.0)
    reading = ht.TemperatureMeasurement.from_bytes(await next_value(measurements)).celsius
    skin = pad.skin_c()
    assert reading == pytest.approx(skin, abs=0.01)
    assert 36.0 < skin < pad.thermal.plate_c
    world.place_probe("cold-pad")
    await clock.advance(1.0)
    reading = ht.TemperatureMeasurement.from_bytes(await next_value(measurements)).celsius
    assert reading == pytest.approx(33.0, abs=0.01)  # the cold pad is idle at skin temperature


async def test_probe_measurement_interval_is_writable_within_range(
    world: SimWorld, central: BumbleCentral, clock: VirtualClock
) -> None:
    probe = await central.connect(world.probe().address)
    measurements = await probe.subscribe(sig.TEMPERATURE_MEASUREMENT_UUID, indicate=True)
    await probe.write(sig.MEASUREMENT_INTERVAL_UUID, bytes(ht.MeasurementInterval(5)))
    assert ht.MeasurementInterval.from_bytes(await probe.read(sig.MEASUREMENT_INTERVAL_UUID)) == (
        ht.MeasurementInterval(5)
    )
    await next_value(measurements)  # the new interval starts with a measurement
    await clock.advance(4.9)
    assert measurements.empty()
    await clock.advance(0.1)
    assert math.isfinite(
        ht.TemperatureMeasurement.from_bytes(await next_value(measurements)).celsius
    )
    assert await refused(probe, sig.MEASUREMENT_INTERVAL_UUID, b"\x11\x0e") == 0xFF  # 3601 s
    assert await refused(probe, sig.MEASUREMENT_INTERVAL_UUID, b"\x05") == 0x0D
