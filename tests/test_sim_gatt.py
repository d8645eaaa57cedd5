"""Open-profile thermal pads over real GATT (bumble's own client on the same virtual radio).

Permissions, ATT errors, the lease on the virtual clock, link loss, telemetry, and the
standard Battery / Device Information services and advertising every device shares.
"""

from __future__ import annotations

import asyncio

import pytest

from drivers.codecs import heating_mat as hm
from drivers.codecs import open_profile as op
from drivers.codecs import sig_common as sig
from drivers.codecs import theragun as tg
from drivers.core.clock import VirtualClock
from simulators.catalog import CATALOG
from simulators.devices.central import BumbleCentral, CentralLink, GattError
from simulators.world import SimWorld

Flags = op.StatusFlags
CONTROL = op.THERMAL_CONTROL_POINT_UUID
STATE = op.THERMAL_STATE_UUID
PLATE = op.PLATE_TEMPERATURE_UUID
# Real-time bound for anything that must be answered (a hang would otherwise last 30 s).
ANSWER_WITHIN_S = 2.0


@pytest.fixture
async def pad(world: SimWorld, central: BumbleCentral) -> CentralLink:
    return await central.connect(world.pad("contrast-pad").address)


async def next_value(queue: asyncio.Queue[bytes]) -> bytes:
    return await asyncio.wait_for(queue.get(), ANSWER_WITHIN_S)


def drained(queue: asyncio.Queue[bytes]) -> list[bytes]:
    values = []
    while not queue.empty():
        values.append(queue.get_nowait())
    return values


async def refused(link: CentralLink, uuid: str, value: bytes) -> int:
    with pytest.raises(GattError) as info:
        async with asyncio.timeout(ANSWER_WITHIN_S):
            await link.write(uuid, value)
    return info.value.code


async def test_writes_to_read_only_values_are_answered_not_left_hanging(pad: CentralLink) -> None:
    assert await refused(pad, STATE, b"\x00") == 0x03  # Write Not Permitted
    assert await refused(pad, PLATE, b"\x00\x00") == 0x03
    assert await refused(pad, op.THERMAL_CAPABILITIES_UUID, b"\x01") == 0x03
    assert await refused(pad, sig.BATTERY_LEVEL_UUID, b"\x64") == 0x03
    assert await refused(pad, sig.MANUFACTURER_NAME_UUID, b"x") == 0x03


async def test_reads_of_write_only_values_are_refused(pad: CentralLink) -> None:
    with pytest.raises(GattError) as info:
        async with asyncio.timeout(ANSWER_WITHIN_S):
            await pad.read(CONTROL)
    assert info.value.code == 0x02  # Read Not Permitted


async def test_notify_only_values_cannot_be_read(world: SimWorld, central: BumbleCentral) -> None:
    gun = await central.connect(world.theragun().address)
    with pytest.raises(GattError) as info:
        async with asyncio.timeout(ANSWER_WITHIN_S):
            await gun.read(tg.NOTIFY_UUID)
    assert info.value.code == 0x02


async def test_a_write_command_to_a_write_request_only_value_is_dropped(
    world: SimWorld, pad: CentralLink
) -> None:
    await pad.write(CONTROL, bytes(op.ThermalStart.heat(40.0)), response=False)
    await asyncio.sleep(0.01)
    assert not world.pad().state.output_on
    assert op.ThermalState.from_bytes(await pad.read(STATE)).mode == op.ThermalMode.OFF


@pytest.mark.parametrize(
    ("key", "command", "code"),
    [
        ("contrast-pad", b"\x02\x01\x68", op.AttError.INVALID_ATTRIBUTE_VALUE_LENGTH),
        ("contrast-pad", b"", op.AttError.INVALID_ATTRIBUTE_VALUE_LENGTH),
        ("contrast-pad", b"\x55", op.AttError.OPCODE_NOT_SUPPORTED),
        ("contrast-pad", b"\x02\x01\x68\x10\x89\x13", op.AttError.LEASE_TOO_LONG),  # 5001 ms
        ("contrast-pad", bytes(op.ThermalStart.heat(47.0)), op.AttError.VALUE_OUT_OF_RANGE),
        ("contrast-pad", bytes(op.LeaseRenew(1000)), op.AttError.NOT_PERMITTED_IN_STATE),
        ("heat-pad", bytes(op.ThermalStart.cold(12.0)), op.AttError.MODE_NOT_SUPPORTED),
        ("cold-pad", bytes(op.ThermalStart.heat(40.0)), op.AttError.MODE_NOT_SUPPORTED),
        ("cold-pad", bytes(op.ThermalStart.cold(3.0)), op.AttError.VALUE_OUT_OF_RANGE),
    ],
)
async def test_refused_commands_carry_the_profile_error(
    world: SimWorld, central: BumbleCentral, key: str, command: bytes, code: int
) -> None:
    link = await central.connect(world.pad(key).address)
    assert await refused(link, CONTROL, command) == code
    assert not world.pad(key).state.output_on


async def test_the_lease_runs_out_on_the_clock(
    world: SimWorld, pad: CentralLink, clock: VirtualClock
) -> None:
    states = await pad.subscribe(STATE)
    await pad.write(CONTROL, bytes(op.ThermalStart.heat(42.0, lease_ms=2000)))
    on = op.ThermalState.from_bytes(await next_value(states))
    assert (on.mode, on.setpoint_c, on.lease_remaining_ms) == (op.ThermalMode.HEAT, 42.0, 2000)
    await clock.advance(1.999)
    assert world.pad().state.output_on
    assert drained(states) == []
    await clock.advance(0.001)
    off = op.ThermalState.from_bytes(await next_value(states))
    assert off == op.ThermalState(flags=Flags.LEASE_EXPIRED)
    assert world.pad().state.flags == ("lease-expired",)


async def test_renewals_keep_the_output_on_and_a_silent_controller_loses_it_within_5_s(
    world: SimWorld, pad: CentralLink, clock: VirtualClock
) -> None:
    await pad.write(CONTROL, bytes(op.ThermalStart.heat(42.0, lease_ms=op.LEASE_MAX_MS)))
    for _ in range(30):
        await clock.advance(1.0)
        await pad.write(CONTROL, bytes(op.LeaseRenew(op.LEASE_MAX_MS)))
    assert world.pad().state.output_on
    assert world.pad().state.plate_c == pytest.approx(40.0, abs=0.5)
    # The controller dies without a word (the link stays up): the lease ends it.
    await clock.advance(4.99)
    assert world.pad().state.output_on
    await clock.advance(0.01)
    assert not world.pad().state.output_on
    assert op.ThermalState.from_bytes(await pad.read(STATE)).flags == Flags.LEASE_EXPIRED


async def test_link_loss_turns_the_output_off_at_once_and_the_pad_advertises_again(
    world: SimWorld, central: BumbleCentral, pad: CentralLink
) -> None:
    await pad.write(CONTROL, bytes(op.ThermalStart.cold(12.0, lease_ms=5000)))
    assert world.pad().state.mode == "cold"
    await pad.disconnect()
    await asyncio.wait_for(pad.disconnected, ANSWER_WITHIN_S)
    await asyncio.sleep(0.01)
    state = world.pad().state
    assert (state.output_on, state.connected, state.advertising) == (False, False, True)
    again = await central.connect(world.pad().address)
    assert op.ThermalState.from_bytes(await again.read(STATE)) == op.ThermalState(
        flags=Flags.LINK_LOST
    )


async def test_plate_temperature_is_notified_every_clock_second(
    world: SimWorld, pad: CentralLink, clock: VirtualClock
) -> None:
    plate = await pad.subscribe(PLATE)
    await pad.write(CONTROL, bytes(op.ThermalStart.heat(42.0, lease_ms=5000)))
    readings = []
    for _ in range(4):
        await clock.advance(1.0)
        readings.append(op.PlateTemperature.from_bytes(await next_value(plate)).celsius)
    assert drained(plate) == []
    temperatures = [r for r in readings if r is not None]
    assert len(temperatures) == 4
    assert temperatures == sorted(temperatures)
    assert temperatures[-1] == pytest.approx(world.pad().state.plate_c, abs=0.01)
    caps = op.ThermalCapabilities.from_bytes(await pad.read(op.THERMAL_CAPABILITIES_UUID))
    assert (caps.can_heat, caps.can_cool, caps.max_lease_ms) == (True, True, 5000)


async def test_battery_and_device_information_are_served(
    world: SimWorld, pad: CentralLink, clock: VirtualClock
) -> None:
    assert sig.BatteryLevel.from_bytes(await pad.read(sig.BATTERY_LEVEL_UUID)).percent == 100
    text = sig.DeviceInfoString.from_bytes(await pad.read(sig.MODEL_NUMBER_UUID)).text
    assert text == world.pad().spec.model
    battery = await pad.subscribe(sig.BATTERY_LEVEL_UUID)
    world.pad().set_battery(50.4)
    await clock.advance(1.0)
    assert sig.BatteryLevel.from_bytes(await next_value(battery)).percent == 51


async def test_every_device_advertises_its_name_and_services(
    world: SimWorld, central: BumbleCentral
) -> None:
    expected = {
        "open-thermal": [op.THERMAL_SERVICE_UUID],
        "open-percussion": [op.PERCUSSION_SERVICE_UUID],
        "theragun": [tg.SERVICE_UUID],
        "heating-mat": [hm.SERVICE_UUID],
        "skin-probe": [sig.HEALTH_THERMOMETER_SERVICE_UUID],
    }
    seen = await central.scan({spec.address for spec in CATALOG})
    for spec in CATALOG:
        sighting = seen[spec.address]
        assert sighting.name == spec.name
        assert list(sighting.service_uuids) == expected[spec.family.value]
