"""The SIG thermometer driver: the simulated skin probe under a simulated pad, and a plain
Environmental Sensing thermometer (a bumble peripheral written here)."""

from __future__ import annotations

import pytest
from bumble import gatt

from drivers.codecs import sig_common as sig
from drivers.core.base import ProbeReading, SafetyClass
from drivers.open_thermal import OpenThermalPad
from drivers.sig_probe import SOURCE_ENVIRONMENTAL, SOURCE_HEALTH_THERMOMETER, SigThermometer
from simulators.faults import SensorNan
from simulators.testing import start_peripheral
from tests.test_drivers_harness import Sim, sim

__all__ = ["sim"]

ROOM_PROBE = "F0:00:00:00:0E:51"
ROOM_C = 21.5  # 0x2A6E example of docs/protocols.md, SIG codecs: 21.50 °C is 66 08


async def connected_probe(sim: Sim, address: str | None = None) -> SigThermometer:
    probe = sim.track(
        SigThermometer(address or sim.address("skin-probe"), backend=sim.backend, clock=sim.clock)
    )
    await probe.connect()
    return probe


async def test_the_probe_under_a_heating_pad_reads_the_skin_warming(sim: Sim) -> None:
    sim.world.place_probe("heat-pad")
    pad = sim.track(OpenThermalPad(sim.address("heat-pad"), backend=sim.backend, clock=sim.clock))
    await pad.connect()
    probe = await connected_probe(sim)
    readings: list[ProbeReading] = []
    probe.register_callback(readings.append)

    await sim.advance(2)
    assert probe.source == SOURCE_HEALTH_THERMOMETER
    assert probe.info.kind == "probe"
    assert probe.info.safety_class is SafetyClass.NONE  # it switches nothing on
    assert probe.reading is not None
    assert probe.reading.celsius == pytest.approx(33.0, abs=0.3)

    await pad.heat(42.0)
    await sim.advance(180)

    assert probe.reading is not None
    assert probe.reading.at >= sim.clock.now() - 1.0
    assert probe.reading.celsius is not None
    assert probe.reading.celsius > 37.0
    assert probe.reading.celsius == pytest.approx(sim.world.probe().reading_c(), abs=0.3)
    assert len(readings) >= 150  # one indication per second


async def test_a_probe_reporting_nan_gives_readings_without_a_temperature(sim: Sim) -> None:
    probe = await connected_probe(sim)
    await sim.advance(2)
    sim.world.inject("skin-probe", SensorNan())

    await sim.advance(2)

    assert probe.reading is not None
    assert probe.reading.celsius is None


async def test_an_environmental_sensing_thermometer_is_read_every_second(sim: Sim) -> None:
    value = [bytes(sig.EnvironmentalTemperature.from_celsius(ROOM_C))]
    temperature: gatt.Characteristic[bytes] = gatt.Characteristic(
        sig.TEMPERATURE_UUID,
        gatt.Characteristic.Properties.READ,
        gatt.Characteristic.READABLE,
        gatt.CharacteristicValue[bytes](read=lambda _connection: value[0]),
    )
    await start_peripheral(
        sim.world.link,
        name="Room",
        address=ROOM_PROBE,
        services=[gatt.Service(sig.ENVIRONMENTAL_SENSING_SERVICE_UUID, [temperature])],
    )
    assert value[0] == bytes.fromhex("6608")
    probe = await connected_probe(sim, ROOM_PROBE)
    assert probe.source == SOURCE_ENVIRONMENTAL
    assert probe.reading == ProbeReading(celsius=ROOM_C, at=sim.clock.now())

    value[0] = bytes(sig.EnvironmentalTemperature.from_celsius(22.25))
    await sim.advance(1.5)

    assert probe.reading is not None
    assert probe.reading.celsius == 22.25
    assert sim.clock.now() - 1.0 <= probe.reading.at < sim.clock.now()
