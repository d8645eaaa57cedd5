"""Classifying advertisements, scanning the simulated radio, and making device objects."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from bumble import gatt

from drivers.codecs import heating_mat as hm
from drivers.codecs import open_profile as op
from drivers.codecs import sig_common as sig
from drivers.codecs import theragun as tg
from drivers.core import discovery, factory
from drivers.core.base import DeviceError, DeviceNotFoundError, SafetyClass
from drivers.core.classify import DRIVERS, classification_for_driver, classify
from drivers.heating_mat import HeatingMat
from drivers.open_percussion import OpenPercussionGun
from drivers.open_thermal import OpenThermalPad
from drivers.sig_probe import SigThermometer
from drivers.theragun import Theragun
from simulators.testing import start_peripheral
from tests.test_drivers_harness import Sim, sim

__all__ = ["sim"]

UNKNOWN_THING = "F0:00:00:00:0E:52"
HM10_SERVICE = sig.sig_uuid(0xFFE0)  # also the serial service of HM-10 modules


@pytest.mark.parametrize(
    ("name", "services", "expected"),
    [
        ("Pad", [op.THERMAL_SERVICE_UUID.upper()], ("thermal", "open-thermal", "lease")),
        (None, [op.PERCUSSION_SERVICE_UUID], ("percussion", "open-percussion", "lease")),
        ("Elite", [], ("percussion", "theragun", "host-timed")),
        ("liv2", [tg.SERVICE_UUID], ("percussion", "theragun", "host-timed")),
        ("WaveSolo", [tg.SERVICE_UUID], ("percussion", None, None)),
        (None, [hm.SERVICE_UUID], ("thermal", "heating-mat", "host-timed")),
        ("Thermo", [sig.HEALTH_THERMOMETER_SERVICE_UUID], ("probe", "sig-thermometer", None)),
        ("Room", [sig.ENVIRONMENTAL_SENSING_SERVICE_UUID], ("probe", "sig-thermometer", None)),
    ],
)
def test_classification_by_service_and_name(
    name: str | None, services: list[str], expected: tuple[str, str | None, str | None]
) -> None:
    found = classify(name, services)
    assert found is not None
    safety = None if found.safety_class is None else str(found.safety_class)
    assert (found.kind, found.driver, safety) == expected
    assert found.supported == (expected[1] is not None)


@pytest.mark.parametrize(
    ("name", "services"),
    [("HMSoft", [HM10_SERVICE]), (None, []), ("Speaker", [sig.BATTERY_SERVICE_UUID])],
)
def test_unknown_advertisements_are_not_classified(name: str | None, services: list[str]) -> None:
    assert classify(name, services) is None


def test_a_driver_named_by_hand_and_an_unknown_one() -> None:
    assert classification_for_driver("heating-mat") == DRIVERS["heating-mat"]
    with pytest.raises(DeviceError, match="use one of: open-thermal"):
        classification_for_driver("toaster")


async def test_scan_classifies_every_simulated_device(sim: Sim) -> None:
    results = {r.address: r for r in await discovery.scan(sim.backend, timeout_s=0.1)}

    expected = {
        "contrast-pad": ("thermal", "open-thermal", SafetyClass.LEASE),
        "heat-pad": ("thermal", "open-thermal", SafetyClass.LEASE),
        "cold-pad": ("thermal", "open-thermal", SafetyClass.LEASE),
        "massage-gun": ("percussion", "open-percussion", SafetyClass.LEASE),
        "theragun": ("percussion", "theragun", SafetyClass.HOST_TIMED),
        "heating-mat": ("thermal", "heating-mat", SafetyClass.HOST_TIMED),
        "skin-probe": ("probe", "sig-thermometer", None),
    }
    for key, (kind, driver, safety) in expected.items():
        result = results[sim.address(key)]
        assert (result.kind, result.driver, result.safety_class) == (kind, driver, safety), key
        assert result.name == sim.world.device(key).name
        assert result.rssi == -50
        assert result.supported
        document = result.to_json()
        assert {"address", "name", "kind", "driver", "rssi", "safety_class"} <= document.keys()


async def test_find_hears_one_address_or_gives_up(sim: Sim) -> None:
    found = await discovery.find(sim.address("theragun").lower(), sim.backend)
    assert found is not None
    assert (found.address, found.name, found.driver) == (sim.address("theragun"), "Pro", "theragun")
    assert found.classification is not None
    assert found.classification.model == "Theragun Pro"

    assert await discovery.find("C0:DE:00:00:00:99", sim.backend, timeout_s=0.1) is None


@pytest.mark.parametrize(
    ("key", "cls"),
    [
        ("contrast-pad", OpenThermalPad),
        ("massage-gun", OpenPercussionGun),
        ("theragun", Theragun),
        ("heating-mat", HeatingMat),
        ("skin-probe", SigThermometer),
    ],
)
async def test_open_device_makes_the_right_driver(sim: Sim, key: str, cls: type[object]) -> None:
    device = sim.track(
        await factory.open_device(sim.address(key), backend=sim.backend, clock=sim.clock)
    )
    assert isinstance(device, cls)
    assert device.info.name == sim.world.device(key).name
    await device.connect()
    assert device.connected


async def test_an_unrecognised_device_needs_its_driver_named(sim: Sim) -> None:
    await start_peripheral(
        sim.world.link,
        name="Mystery",
        address=UNKNOWN_THING,
        services=[gatt.Service(sig.BATTERY_SERVICE_UUID, [])],
    )
    with pytest.raises(DeviceError, match="--driver"):
        await factory.open_device(UNKNOWN_THING, backend=sim.backend)

    forced = await factory.open_device(UNKNOWN_THING, backend=sim.backend, driver="heating-mat")
    assert isinstance(forced, HeatingMat)


async def test_an_address_nobody_answers_is_not_found(sim: Sim) -> None:
    with pytest.raises(DeviceNotFoundError, match="relieve scan"):
        await factory.open_device("C0:DE:00:00:00:99", backend=sim.backend, timeout_s=0.1)


async def test_a_wave_roller_is_listed_but_cannot_be_driven(sim: Sim) -> None:
    await start_peripheral(
        sim.world.link,
        name="WaveSolo",
        address=UNKNOWN_THING,
        services=[gatt.Service(tg.SERVICE_UUID, [])],
    )
    result = await discovery.find(UNKNOWN_THING, sim.backend)
    assert result is not None
    assert (result.kind, result.driver, result.supported) == ("percussion", None, False)
    with pytest.raises(DeviceError, match="cannot drive"):
        factory.create_device(result, backend=sim.backend)


def test_discovery_and_factory_load_bleak_only_when_used() -> None:
    code = (
        "import json, sys\n"
        "import drivers.core.factory, drivers.core.discovery, drivers.core.classify\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert not {"bleak", "bumble"} & set(json.loads(result.stdout))
