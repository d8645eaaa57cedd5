"""The open-profile thermal pad driver against the simulated pads (contrast, heat, cold).

Everything goes through bleak and the simulated radio; therapy time passes on the virtual
clock (``sim.advance``), BLE happens in real time.
"""

from __future__ import annotations

import logging

import pytest

from drivers.codecs import open_profile as op
from drivers.core.base import (
    DeviceRefusedError,
    DeviceTimeoutError,
    NotConnectedError,
    OutOfRangeError,
    SafetyClass,
    ThermalState,
)
from drivers.open_thermal import OpenThermalPad
from simulators.devices.state import DeviceState
from simulators.faults import (
    AttErrorFault,
    Disconnect,
    DropNotifications,
    LinkLatency,
    SensorNan,
    StuckHeater,
)
from tests.test_drivers_harness import Sim, sim, wait_until

__all__ = ["sim"]


async def connected_pad(
    sim: Sim, key: str = "contrast-pad", *, lease_s: float = 3.0
) -> OpenThermalPad:
    pad = sim.track(
        OpenThermalPad(sim.address(key), backend=sim.backend, clock=sim.clock, lease_s=lease_s)
    )
    await pad.connect()
    return pad


async def test_connect_reads_identity_capabilities_and_state(sim: Sim) -> None:
    pad = await connected_pad(sim)

    assert pad.connected
    assert pad.info.name == "relieve Contrast Pad"
    assert (pad.info.kind, pad.info.driver) == ("thermal", "open-thermal")
    assert pad.info.safety_class is SafetyClass.LEASE
    assert (pad.info.model, pad.info.serial, pad.info.battery) == ("RLV-CP1", "SIM-0001", 100)
    assert pad.heat_range == (30.0, 45.0)
    assert pad.cold_range == (5.0, 25.0)
    caps = pad.caps
    assert (caps.can_heat, caps.can_cool, caps.min_celsius, caps.max_celsius) == (
        True,
        True,
        5.0,
        45.0,
    )
    assert caps.max_lease_s == 5.0
    assert pad.state.connected
    assert pad.state.mode == "off"
    assert pad.state.plate_celsius == pytest.approx(33.0, abs=0.5)


async def test_heat_is_set_read_back_and_kept_alive_by_renewals(sim: Sim) -> None:
    pad = await connected_pad(sim, "heat-pad")
    seen: list[ThermalState] = []
    pad.register_callback(seen.append)

    await pad.heat(40.0)
    await sim.advance(60)

    device = sim.world.pad("heat-pad").state
    assert (device.mode, device.setpoint_c) == ("heat", 40.0)
    assert device.lease_remaining_s is not None
    assert device.lease_remaining_s > 1.0  # renewed every second, never allowed to run out
    assert "lease-expired" not in device.flags
    assert (pad.state.mode, pad.state.setpoint_celsius) == ("heat", 40.0)
    assert pad.state.plate_celsius is not None
    assert pad.state.plate_celsius > 38.0  # telemetry follows the plate heating up
    assert pad.state.plate_celsius == pytest.approx(device.plate_c, abs=0.6)
    assert pad.state.updated_at >= sim.clock.now() - 1.0
    plates = [s.plate_celsius for s in seen if s.plate_celsius is not None]
    assert len(plates) >= 50
    assert plates == sorted(plates)

    await pad.off()
    await sim.advance(5)
    assert sim.world.pad("heat-pad").state.mode == "off"
    assert pad.state.mode == "off"
    assert pad.state.faults == frozenset()


async def test_cool_drives_the_plate_down(sim: Sim) -> None:
    pad = await connected_pad(sim)

    await pad.cool(12.0)
    await sim.advance(120)

    assert sim.world.pad().state.mode == "cold"
    assert pad.state.mode == "cold"
    assert pad.state.plate_celsius is not None
    assert pad.state.plate_celsius < 16.0
    await pad.off()
    assert sim.world.pad().state.mode == "off"


@pytest.mark.parametrize(
    ("key", "mode", "celsius", "limit_id"),
    [
        ("contrast-pad", "heat", 45.5, "H1"),
        ("contrast-pad", "cold", 4.0, "C4"),
        ("contrast-pad", "heat", 29.0, None),  # under the pad's own heat range
        ("cold-pad", "heat", 40.0, None),  # a cold pad cannot heat
        ("heat-pad", "cold", 12.0, None),  # a heat pad cannot cool
    ],
)
async def test_setpoints_outside_limits_or_range_are_refused_before_sending(
    sim: Sim, key: str, mode: str, celsius: float, limit_id: str | None
) -> None:
    pad = await connected_pad(sim, key)
    command = pad.heat if mode == "heat" else pad.cool

    with pytest.raises(OutOfRangeError) as refused:
        await command(celsius)

    assert refused.value.limit_id == limit_id
    assert str(refused.value).endswith(".")
    assert sim.world.pad(key).state.mode == "off"


def test_a_lease_longer_than_h4_is_refused(sim: Sim) -> None:
    with pytest.raises(OutOfRangeError) as refused:
        OpenThermalPad(sim.address("heat-pad"), backend=sim.backend, lease_s=6.0)
    assert refused.value.limit_id == "H4"


async def test_commands_before_connecting_raise_not_connected(sim: Sim) -> None:
    pad = OpenThermalPad(sim.address("heat-pad"), backend=sim.backend, clock=sim.clock)
    with pytest.raises(NotConnectedError, match="connect"):
        await pad.heat(40.0)
    assert not pad.connected


async def test_the_pad_turns_itself_off_when_the_host_stops_renewing(sim: Sim) -> None:
    pad = await connected_pad(sim, "heat-pad", lease_s=3.0)
    await pad.heat(41.0)
    await sim.advance(10)
    assert sim.world.pad("heat-pad").state.mode == "heat"

    await pad.halt()  # the host hangs: no renewal, no OFF, the link stays up
    await sim.advance(2.5)
    assert sim.world.pad("heat-pad").state.mode == "heat"  # the lease still runs
    await sim.advance(1.0)

    device = sim.world.pad("heat-pad").state
    assert device.mode == "off"
    assert "lease-expired" in device.flags
    assert pad.state.mode == "off"
    assert "lease-expired" in pad.state.faults


async def test_reconnect_after_a_drop_sends_off_first_and_does_not_resume(
    sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    pad = await connected_pad(sim)
    seen: list[ThermalState] = []
    pad.register_callback(seen.append)
    await pad.heat(40.0)
    await sim.advance(5)
    caplog.set_level(logging.DEBUG, logger="drivers.core.connection")
    caplog.clear()

    sim.world.inject("contrast-pad", Disconnect())
    await sim.advance(0.1)
    await wait_until(lambda: pad.reconnects == 1 and pad.connected)

    lost = [s for s in seen if not s.connected]
    assert lost
    assert lost[0].mode == "off"  # the open profile switches off on link loss
    writes = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("GATT write") and op.THERMAL_CONTROL_POINT_UUID in r.message
    ]
    assert writes[0].endswith("<- 01 (OFF)")
    await sim.advance(5)
    assert sim.world.pad().state.mode == "off"
    assert pad.state.connected
    assert pad.state.mode == "off"
    assert "link-lost" in pad.state.faults


async def test_att_errors_are_named_by_the_profile(sim: Sim) -> None:
    pad = await connected_pad(sim)

    sim.world.inject("contrast-pad", AttErrorFault(code=int(op.AttError.VALUE_OUT_OF_RANGE)))
    with pytest.raises(DeviceRefusedError) as refused:
        await pad.heat(40.0)
    assert refused.value.att_error == 0x81
    assert "a value is outside what the device supports" in str(refused.value)

    sim.world.inject("contrast-pad", SensorNan())
    await sim.advance(1)
    with pytest.raises(DeviceRefusedError) as faulted:
        await pad.heat(40.0)
    assert faulted.value.att_error == op.AttError.FAULT_ACTIVE
    assert "clear it before switching on" in str(faulted.value)
    assert "sensor-fault" in pad.state.faults
    assert pad.state.plate_celsius is None


@pytest.mark.parametrize("silent", [True, False])
async def test_a_heater_that_keeps_heating_after_off_is_reported_stuck(
    sim: Sim, silent: bool
) -> None:
    pad = await connected_pad(sim, "heat-pad")
    await pad.heat(40.0)
    await sim.advance(60)
    sim.world.inject("heat-pad", StuckHeater(silent=silent))
    await sim.advance(1)
    assert "stuck-output" not in pad.state.faults  # heating, as asked: nothing to tell yet

    await pad.off()
    if silent:  # the pad says nothing: the driver has to see the plate keep heating
        assert "stuck-output" not in pad.state.faults
    await sim.advance(10)

    assert sim.world.pad("heat-pad").state.energised
    assert "stuck-output" in pad.state.faults
    assert pad.state.mode == "off"


async def test_a_pad_cooling_down_after_off_is_not_reported_stuck(sim: Sim) -> None:
    pad = await connected_pad(sim, "heat-pad")
    await pad.heat(42.0)
    await sim.advance(90)
    await pad.off()
    await sim.advance(120)
    assert "stuck-output" not in pad.state.faults


async def test_silent_telemetry_is_reported_as_a_stall(sim: Sim) -> None:
    pad = await connected_pad(sim)
    sim.world.inject("contrast-pad", DropNotifications(duration=10))

    await sim.advance(4)
    assert "telemetry-stall" not in pad.state.faults
    await sim.advance(4)
    assert "telemetry-stall" in pad.state.faults
    await sim.advance(5)
    assert "telemetry-stall" not in pad.state.faults


async def test_a_command_never_acknowledged_times_out_after_two_retries(sim: Sim) -> None:
    pad = sim.track(
        OpenThermalPad(
            sim.address("heat-pad"),
            backend=sim.backend,
            clock=sim.clock,
            command_timeout_s=0.05,
        )
    )
    await pad.connect()
    simulated = sim.world.pad("heat-pad")
    history: list[DeviceState] = []
    simulated.register_callback(history.append)
    sim.world.inject("heat-pad", LinkLatency(latency=0.3, duration=1.0))
    await sim.advance(0.01)

    with pytest.raises(DeviceTimeoutError, match="after 2 retries"):
        await pad.heat(40.0)
    # the held-back STARTs reach the pad after all (the link holds each 0.3 s of real time) ...
    await wait_until(lambda: any(state.mode == "heat" for state in history))
    # ... and their lease, never renewed, switches it off again. STARTs still held back may
    # arrive meanwhile, each granting 3 s more: three keep the pad on for 9 s at most, and what
    # the pad went through shows the expiry whenever they arrive.
    await sim.advance(10.0)
    on = next(i for i, state in enumerate(history) if state.mode == "heat")
    expired = [s for s in history[on:] if s.mode == "off" and "lease-expired" in s.flags]
    assert expired, [(s.time, s.mode, s.flags) for s in history]


async def test_unregistered_callbacks_hear_nothing_more(sim: Sim) -> None:
    pad = await connected_pad(sim)
    seen: list[ThermalState] = []
    unregister = pad.register_callback(seen.append)
    await sim.advance(2)
    assert seen
    unregister()
    count = len(seen)
    await sim.advance(3)
    assert len(seen) == count


async def test_disconnect_turns_the_output_off_first(sim: Sim) -> None:
    pad = await connected_pad(sim)
    await pad.heat(40.0)
    await sim.advance(3)

    await pad.disconnect()

    device = sim.world.pad().state
    assert device.mode == "off"
    assert not device.flags  # an orderly OFF: no lease expiry, no link loss
    assert not pad.connected
    assert not pad.state.connected
