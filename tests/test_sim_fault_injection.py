"""Every fault kind, injected into a running world and observed over the radio."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import pytest

from drivers.codecs import open_profile as op
from drivers.codecs import sig_common as sig
from drivers.codecs import sig_thermometer as ht
from drivers.core.clock import VirtualClock
from simulators.devices.central import BumbleCentral, CentralLink, GattError, LinkDroppedError
from simulators.faults import (
    AttErrorFault,
    BatteryDies,
    DelayNotifications,
    Disconnect,
    DropNotifications,
    FaultNotSupportedError,
    LinkLatency,
    RefuseConnections,
    SensorDrift,
    SensorNan,
    StuckHeater,
)
from simulators.world import SimWorld

ANSWER_WITHIN_S = 2.0
CONTROL = op.THERMAL_CONTROL_POINT_UUID
STATE = op.THERMAL_STATE_UUID
PLATE = op.PLATE_TEMPERATURE_UUID
LINK_SUPERVISION_TIMEOUT = 0x08  # HCI reason a peer sees when a device drops out of range


@pytest.fixture
async def world(clock: VirtualClock) -> AsyncIterator[SimWorld]:
    async with SimWorld(clock=clock, devices=["contrast-pad", "skin-probe"]) as world:
        yield world


@pytest.fixture
async def pad(world: SimWorld, central: BumbleCentral) -> CentralLink:
    return await central.connect(world.pad().address)


async def next_value(queue: asyncio.Queue[bytes]) -> bytes:
    return await asyncio.wait_for(queue.get(), ANSWER_WITHIN_S)


async def test_disconnect_at_a_clock_time(
    world: SimWorld, pad: CentralLink, clock: VirtualClock
) -> None:
    world.inject("contrast-pad", Disconnect(at=120.0))
    await pad.write(CONTROL, bytes(op.ThermalStart.heat(40.0, 5000)))
    for _ in range(119):
        await clock.advance(1.0)
        await pad.write(CONTROL, bytes(op.LeaseRenew(5000)))
    assert not pad.disconnected.done()
    await clock.advance(1.0)
    assert await asyncio.wait_for(pad.disconnected, ANSWER_WITHIN_S) == LINK_SUPERVISION_TIMEOUT
    state = world.pad().state
    assert (state.output_on, state.flags) == (False, ("link-lost",))
    assert "disconnect" in state.faults


async def test_refused_connections_are_dropped_until_the_window_ends(
    world: SimWorld, central: BumbleCentral, clock: VirtualClock
) -> None:
    world.inject("contrast-pad", RefuseConnections(duration=30.0))
    await clock.advance(0.0)
    with pytest.raises(LinkDroppedError) as info:
        async with asyncio.timeout(ANSWER_WITHIN_S):
            await central.connect(world.pad().address)
    assert info.value.reason == 0x14  # remote device terminated: low resources
    await asyncio.sleep(0.05)
    assert not world.pad().state.connected
    await clock.advance(30.0)
    link = await central.connect(world.pad().address)
    assert op.ThermalState.from_bytes(await link.read(STATE)).mode == op.ThermalMode.OFF


async def test_hidden_device_stops_advertising_and_drops_its_link(
    world: SimWorld, pad: CentralLink, clock: VirtualClock
) -> None:
    world.inject("contrast-pad", RefuseConnections(at=5.0, duration=10.0, hide=True))
    await clock.advance(5.0)
    await asyncio.wait_for(pad.disconnected, ANSWER_WITHIN_S)
    await asyncio.sleep(0.05)
    assert world.pad().state.advertising is False
    await clock.advance(10.0)
    await asyncio.sleep(0.05)
    assert world.pad().state.advertising is True


async def test_dropped_notifications_never_arrive(
    world: SimWorld, pad: CentralLink, clock: VirtualClock
) -> None:
    plate = await pad.subscribe(PLATE)
    world.inject("contrast-pad", DropNotifications(duration=2.5))
    await clock.advance(2.0)  # ticks at 1 s and 2 s fall in the window
    await asyncio.sleep(0.02)
    assert plate.empty()
    await clock.advance(1.0)
    assert op.PlateTemperature.from_bytes(await next_value(plate)).celsius is not None


async def test_delayed_notifications_arrive_late_on_the_clock(
    world: SimWorld, pad: CentralLink, clock: VirtualClock
) -> None:
    states = await pad.subscribe(STATE)
    world.inject("contrast-pad", DelayNotifications(delay=2.0))
    await pad.write(CONTROL, bytes(op.ThermalStart.heat(40.0, 5000)))
    await clock.advance(1.9)
    assert states.empty()
    await clock.advance(0.1)
    assert op.ThermalState.from_bytes(await next_value(states)).mode == op.ThermalMode.HEAT


async def test_att_errors_on_the_next_writes(world: SimWorld, pad: CentralLink) -> None:
    world.inject("contrast-pad", AttErrorFault(count=2, code=0x81))
    start = bytes(op.ThermalStart.heat(40.0))
    for _ in range(2):
        with pytest.raises(GattError) as info:
            await pad.write(CONTROL, start)
        assert info.value.code == 0x81
    assert not world.pad().state.output_on
    await pad.write(CONTROL, start)
    assert world.pad().state.output_on


async def test_stuck_heater_ignores_off_and_the_pad_reports_it(
    world: SimWorld, pad: CentralLink, clock: VirtualClock
) -> None:
    world.inject("contrast-pad", StuckHeater())
    states = await pad.subscribe(STATE)
    await pad.write(CONTROL, bytes(op.ThermalStart.heat(40.0, 5000)))
    await next_value(states)
    await pad.write(CONTROL, bytes(op.OutputOff()))
    off = op.ThermalState.from_bytes(await next_value(states))
    assert off.mode == op.ThermalMode.OFF
    assert op.StatusFlags.STUCK_OUTPUT in off.flags
    await clock.advance(60.0)
    state = world.pad().state
    assert (state.output_on, state.energised) == (False, True)
    assert op.PlateTemperature.from_bytes(await pad.read(PLATE)).celsius == pytest.approx(
        state.plate_c, abs=0.01
    )
    assert state.plate_c is not None
    assert state.plate_c > 45.0


async def test_sensor_nan_reads_not_known_and_stops_the_output(
    world: SimWorld, pad: CentralLink, clock: VirtualClock
) -> None:
    await pad.write(CONTROL, bytes(op.ThermalStart.heat(40.0, 5000)))
    world.inject("contrast-pad", SensorNan(at=1.0))
    await clock.advance(1.0)
    assert op.PlateTemperature.from_bytes(await pad.read(PLATE)).celsius is None
    state = op.ThermalState.from_bytes(await pad.read(STATE))
    assert state.mode == op.ThermalMode.OFF
    assert state.flags == op.StatusFlags.SENSOR_FAULT


async def test_probe_sensor_faults_reach_the_wire(
    world: SimWorld, central: BumbleCentral, clock: VirtualClock
) -> None:
    probe = await central.connect(world.probe().address)
    readings = await probe.subscribe(sig.TEMPERATURE_MEASUREMENT_UUID, indicate=True)
    world.inject("skin-probe", SensorDrift(rate=6.0, duration=10.0))
    await clock.advance(9.0)
    values = [ht.TemperatureMeasurement.from_bytes(readings.get_nowait()).celsius]
    while not readings.empty():
        values.append(ht.TemperatureMeasurement.from_bytes(readings.get_nowait()).celsius)
    assert values[-1] == pytest.approx(33.0 + 6.0 * 9 / 60, abs=0.01)
    world.inject("skin-probe", SensorNan())
    await clock.advance(1.0)
    while not readings.empty():
        last = readings.get_nowait()
    assert math.isnan(ht.TemperatureMeasurement.from_bytes(last).celsius)


async def test_battery_death_drops_the_link_and_silences_the_device(
    world: SimWorld, pad: CentralLink, clock: VirtualClock
) -> None:
    await pad.write(CONTROL, bytes(op.ThermalStart.heat(40.0, 5000)))
    world.inject("contrast-pad", BatteryDies(at=2.0))
    await clock.advance(2.0)
    await asyncio.wait_for(pad.disconnected, ANSWER_WITHIN_S)
    state = world.pad().state
    assert (state.powered, state.output_on, state.advertising, state.battery_pct) == (
        False,
        False,
        False,
        0.0,
    )
    async with BumbleCentral(world.link, address="C0:DE:00:00:FF:09") as other:
        with pytest.raises(TimeoutError):
            await other.scan({world.pad().address}, within_s=0.2)


async def test_link_latency_slows_every_round_trip(world: SimWorld, pad: CentralLink) -> None:
    started = time.perf_counter()
    await pad.read(sig.BATTERY_LEVEL_UUID)
    fast = time.perf_counter() - started
    world.inject("contrast-pad", LinkLatency(latency=0.05))
    started = time.perf_counter()
    await pad.read(sig.BATTERY_LEVEL_UUID)
    slow = time.perf_counter() - started
    assert slow >= 0.1 > fast  # request and response each held 50 ms


def test_faults_a_device_cannot_have_are_refused(world: SimWorld) -> None:
    with pytest.raises(FaultNotSupportedError, match="skin-probe simulator cannot have"):
        world.inject("skin-probe", StuckHeater())
