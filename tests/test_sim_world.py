"""SimWorld: building, finding, scenarios, events, stopping, and plain bleak on top."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakGATTProtocolError

from drivers.codecs import open_profile as op
from drivers.codecs import sig_common as sig
from drivers.core.clock import ScaledClock, VirtualClock
from simulators import backend
from simulators.catalog import CATALOG, SimulatorError, UnknownDeviceError
from simulators.devices.central import BumbleCentral
from simulators.devices.state import DeviceState
from simulators.faults import parse_scenario
from simulators.world import SimWorld

# Building and starting a world of every device (bumble already imported) stays under this.
WORLD_START_BUDGET_S = 0.050
ANSWER_WITHIN_S = 2.0

SCENARIO = """\
name = "flat battery, wandering pad"

[[device]]
key = "massage-gun"
battery = 15

[[device]]
key = "skin-probe"
placed_under = "heat-pad"

[[fault]]
device = "contrast-pad"
kind = "battery_dies"
at = 30
"""


@pytest.fixture
async def bleak_world(world: SimWorld) -> AsyncIterator[SimWorld]:
    backend.use_link(world.link)
    yield world
    await backend.reset()


async def test_a_fresh_world_starts_every_device_and_stops_them_all() -> None:
    # How fast it starts is a figure for benchmarks/world_bench.py, not an assertion here.
    for _ in range(2):
        world = SimWorld(clock=VirtualClock())
        await world.start()
        assert len(world) == len(CATALOG)
        assert all(device.running for device in world)
        await world.stop()
        assert not any(device.running for device in world)


async def test_devices_are_found_by_key_and_address(world: SimWorld) -> None:
    for spec in CATALOG:
        assert world.device(spec.key).address == spec.address
        assert world.device(spec.address.lower()).key == spec.key
    assert world.pad("heat-pad").name == "relieve Heat Pad"
    assert world.theragun().name == "Pro"
    with pytest.raises(UnknownDeviceError, match="no device 'toaster'"):
        world.device("toaster")
    with pytest.raises(SimulatorError, match="not a OpenThermalPad"):
        world.pad("massage-gun")


def test_a_world_holds_only_the_devices_asked_for() -> None:
    world = SimWorld(clock=VirtualClock(), devices=["heat-pad", "skin-probe"])
    assert world.keys == ("heat-pad", "skin-probe")
    assert world.probe().state.placed_under == "heat-pad"
    with pytest.raises(UnknownDeviceError, match="no simulated device 'lamp'"):
        SimWorld(devices=["lamp"])
    with pytest.raises(SimulatorError, match="only once"):
        SimWorld(devices=["heat-pad", "heat-pad"])


async def test_a_scenario_sets_up_devices_and_schedules_faults_from_the_start(
    clock: VirtualClock,
) -> None:
    async with SimWorld(clock=clock, scenario=parse_scenario(SCENARIO)) as world:
        assert world.gun().state.battery_pct == pytest.approx(15.0)
        assert world.probe().state.placed_under == "heat-pad"
        await clock.advance(29.0)
        assert world.pad().state.powered
        await clock.advance(1.0)
        assert not world.pad().state.powered
        assert world.pad().state.faults == ("battery_dies",)


async def test_callbacks_see_every_change_until_unregistered(
    world: SimWorld, clock: VirtualClock
) -> None:
    seen: list[DeviceState] = []
    unregister = world.register_callback(seen.append)
    async with BumbleCentral(world.link) as central:
        link = await central.connect(world.pad().address)
        await link.write(
            op.THERMAL_CONTROL_POINT_UUID, bytes(op.ThermalStart.heat(41.0, lease_ms=1500))
        )
        await clock.advance(2.0)
    pad_states = [s for s in seen if s.key == "contrast-pad"]
    assert any(s.mode == "heat" and s.setpoint_c == 41.0 for s in pad_states if s.time < 1.5)
    after = [s for s in pad_states if s.time >= 1.5]
    assert after
    assert all(not s.output_on and s.flags == ("lease-expired",) for s in after)
    assert {s.key for s in seen} == {spec.key for spec in CATALOG}  # watched devices tick
    json.dumps([s.to_json() for s in seen])  # --events-json can print every snapshot
    unregister()
    count = len(seen)
    await clock.advance(5.0)
    assert len(seen) == count


async def test_a_scaled_clock_runs_the_lease_in_scaled_real_time() -> None:
    clock = ScaledClock(1000.0)  # 2 s of lease pass in 2 ms
    async with (
        SimWorld(clock=clock, devices=["heat-pad"]) as world,
        BumbleCentral(world.link) as central,
    ):
        link = await central.connect(world.pad("heat-pad").address)
        states = await link.subscribe(op.THERMAL_STATE_UUID)
        await link.write(
            op.THERMAL_CONTROL_POINT_UUID, bytes(op.ThermalStart.heat(40.0, lease_ms=2000))
        )
        assert op.ThermalState.from_bytes(await states.get()).mode == op.ThermalMode.HEAT
        off = op.ThermalState.from_bytes(await asyncio.wait_for(states.get(), ANSWER_WITHIN_S))
        assert off.flags == op.StatusFlags.LEASE_EXPIRED
        assert clock.now() >= 2.0


def test_snapshots_are_json_ready() -> None:
    state = DeviceState(
        key="skin-probe",
        address="C0:DE:00:00:00:07",
        time=1.0,
        powered=True,
        advertising=True,
        connected=False,
        sensor_c=math.nan,
        flags=("sensor-fault",),
    )
    data = state.to_json()
    assert data["sensor_c"] is None
    assert data["flags"] == ["sensor-fault"]
    assert json.loads(json.dumps(data))["key"] == "skin-probe"


async def test_stop_ends_every_device_task(clock: VirtualClock) -> None:
    world = SimWorld(clock=clock)
    await world.start()
    assert any(t.get_name().startswith("sim ") for t in asyncio.all_tasks())
    await world.stop()
    assert not any(t.get_name().startswith("sim ") for t in asyncio.all_tasks())
    assert not any(device.running for device in world)
    assert all(not device.state.advertising for device in world)


async def test_bleak_finds_every_device_by_its_advertising(bleak_world: SimWorld) -> None:
    found = await BleakScanner.discover(timeout=0.1, return_adv=True, backend=backend.SimScanner)
    by_address = {device.address.upper(): adv for device, adv in found.values()}
    for spec in CATALOG:
        advert = by_address[spec.address]
        assert advert.local_name == spec.name
        assert len(advert.service_uuids) == 1


async def test_bleak_drives_a_pad_through_its_lease(
    bleak_world: SimWorld, clock: VirtualClock
) -> None:
    pad = bleak_world.pad()
    states: asyncio.Queue[op.ThermalState] = asyncio.Queue()
    async with BleakClient(pad.address, backend=backend.SimClient) as client:
        await client.start_notify(
            op.THERMAL_STATE_UUID,
            lambda _char, data: states.put_nowait(op.ThermalState.from_bytes(data)),
        )
        start = op.ThermalStart.heat(40.0, lease_ms=2000)
        await client.write_gatt_char(op.THERMAL_CONTROL_POINT_UUID, bytes(start), response=True)
        on = await asyncio.wait_for(states.get(), ANSWER_WITHIN_S)
        assert (on.mode, on.setpoint_c) == (op.ThermalMode.HEAT, 40.0)
        too_hot = bytes(op.ThermalStart.heat(46.0))
        with pytest.raises(BleakGATTProtocolError) as info:
            await client.write_gatt_char(op.THERMAL_CONTROL_POINT_UUID, too_hot, response=True)
        assert int(info.value.code) == op.AttError.VALUE_OUT_OF_RANGE
        await clock.advance(2.0)
        off = await asyncio.wait_for(states.get(), ANSWER_WITHIN_S)
        assert off.flags == op.StatusFlags.LEASE_EXPIRED
        battery = await client.read_gatt_char(sig.BATTERY_LEVEL_UUID)
        assert sig.BatteryLevel.from_bytes(battery).percent == 100
