"""drivers.registry is the one list of drivers: the CLI, classification, the factory and the
simulated devices all read it, so a driver registered there is reachable everywhere."""

from __future__ import annotations

import asyncio
import io
import json
import re

import pytest

from controller.cli import commands as cli
from controller.cli import device as device_cmd
from controller.session.simulation import open_radio
from drivers import registry
from drivers.core import discovery, factory
from drivers.core.base import DeviceError, SafetyClass
from drivers.core.classify import DRIVERS, classification_for_driver, classify
from drivers.core.clock import VirtualClock
from drivers.core.device import DriverOptions
from drivers.core.discovery import ScanResult
from simulators.catalog import CATALOG, spec_by_address
from tests.test_drivers_harness import Sim, sim

__all__ = ["sim"]

NAMES = registry.driver_names()
ACTIONS = ("info", "heat", "cold", "gun", "off", "watch")
NOWHERE = "C0:DE:00:00:00:FF"  # no simulated device has this address


def _device_for(name: str) -> str:
    """The address of the first simulated device that driver ``name`` drives."""
    return next(spec.address for spec in CATALOG if spec.driver == name)


# One more driver, registered as a new device's entry would be (a probe with its own service).
EXTRA_SERVICE = "0000fff9-0000-1000-8000-00805f9b34fb"


@pytest.fixture
def extra(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Register the driver ``test-probe``; the addresses its build function was given."""
    made: list[str] = []

    def build(
        address: str, options: DriverOptions, init_packet: bytes | None
    ) -> registry.AnyDevice:
        made.append(address)
        return registry.driver("sig-thermometer").build(address, options, init_packet)

    entry = registry.DriverEntry(
        name="test-probe",
        kind="probe",
        safety_class=SafetyClass.NONE,
        recognised_by="the test's own service",
        build=build,
        services=lambda: (EXTRA_SERVICE,),
    )
    monkeypatch.setattr(registry, "DRIVERS", (*registry.DRIVERS, entry))
    return made


def test_the_registry_names_each_driver_once_in_recognition_order() -> None:
    assert NAMES == (
        "open-thermal",
        "open-percussion",
        "theragun",
        "heating-mat",
        "sig-thermometer",
    )
    assert tuple(DRIVERS) == NAMES
    assert [registry.driver(name).name for name in NAMES] == list(NAMES)


def _help_lists(action: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, ...]:
    """The driver names ``relieve device ACTION --help`` lists."""
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["device", action, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # undo the help's line wrapping
    listed = re.search(r"--driver NAME drive it with NAME \(([^)]*)\)", text)
    assert listed is not None, text
    return tuple(listed.group(1).split(", "))


@pytest.mark.parametrize("action", ACTIONS)
def test_the_driver_help_lists_exactly_the_registered_names(
    action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _help_lists(action, capsys) == NAMES


def test_a_driver_added_to_the_registry_is_known_everywhere(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert registry.driver_names() == (*NAMES, "test-probe")
    # the CLI: listed in the help, taken by --driver
    assert _help_lists("watch", capsys) == (*NAMES, "test-probe")
    args = cli.build_parser().parse_args(["device", "watch", NOWHERE, "--driver", "test-probe"])
    assert args.driver == "test-probe"
    # classification: by its service, and by hand
    found = classify("Thermometer", [EXTRA_SERVICE.upper()])
    assert found is not None
    assert (found.kind, found.driver, found.safety_class) == ("probe", "test-probe", None)
    assert classification_for_driver("test-probe") == found
    # the factory: its build function makes the device
    unknown = ScanResult(NOWHERE, None, None, (), classification=None)
    device = factory.create_device(unknown, driver="test-probe")
    assert extra == [NOWHERE]
    assert registry.is_probe_device(device)


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_name_is_a_driver_choice(name: str) -> None:
    for action in ("info", "off", "watch"):
        args = cli.build_parser().parse_args(["device", action, NOWHERE, "--driver", name])
        assert args.driver == name


def test_a_name_not_registered_is_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "toaster" not in NAMES
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["device", "info", NOWHERE, "--driver", "toaster", "--simulate"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'toaster'" in err
    assert all(name in err for name in NAMES)
    with pytest.raises(DeviceError, match=r"no driver called 'toaster'; use one of: open-thermal"):
        registry.driver("toaster")
    with pytest.raises(DeviceError, match="no driver called 'toaster'"):
        classification_for_driver("toaster")


@pytest.mark.parametrize("name", NAMES)
async def test_every_registered_driver_is_reachable_by_driver_name(name: str) -> None:
    # `relieve device info ADDR --driver NAME` on the simulated device that driver drives
    entry = registry.driver(name)
    clock = VirtualClock()
    async with open_radio(simulate=True, clock=clock) as radio:
        args = cli.build_parser().parse_args(
            ["device", "info", _device_for(name), "--driver", name, "--json", "--simulate"]
        )
        out, err = io.StringIO(), io.StringIO()
        run = device_cmd.run_device(args, clock=clock, out=out, err=err, radio=radio)
        task = asyncio.get_running_loop().create_task(run)
        await clock.run(task)
    assert task.result() == 0, err.getvalue()
    info = json.loads(out.getvalue())
    assert (info["driver"], info["kind"], info["safety_class"]) == (
        name,
        entry.kind,
        str(entry.safety_class),
    )


@pytest.mark.parametrize("name", NAMES)
def test_a_device_that_advertises_nothing_gets_the_driver_named(name: str) -> None:
    unknown = ScanResult(NOWHERE, None, None, (), classification=None)
    device = factory.create_device(unknown, driver=name)
    entry = registry.driver(name)
    assert registry.entry_for(device) is entry
    registered = (entry.name, entry.kind, entry.safety_class)
    assert (device.info.driver, device.info.kind, device.info.safety_class) == registered
    cls = type(device)
    assert registered == (cls.DRIVER, cls.KIND, cls.SAFETY_CLASS)
    kinds = {
        "thermal": registry.is_thermal_device(device),
        "percussion": registry.is_percussion_device(device),
        "probe": registry.is_probe_device(device),
    }
    assert [kind for kind, yes in kinds.items() if yes] == [entry.kind]
    assert registry.has_lease(device) is (entry.safety_class is SafetyClass.LEASE)


async def test_classify_recognises_every_registered_drivers_simulated_device(sim: Sim) -> None:
    heard = await discovery.scan(sim.backend, timeout_s=0.1)
    assert len(heard) == len(CATALOG)
    for result in heard:
        spec = spec_by_address(result.address)
        assert result.driver == spec.driver, spec.key
        assert classify(result.name, result.service_uuids) == result.classification
    # the simulated world advertises a device for every registered driver
    assert {result.driver for result in heard} == set(NAMES)


@pytest.mark.parametrize("entry", registry.DRIVERS, ids=NAMES)
def test_a_registered_service_uuid_classifies_as_its_driver(entry: registry.DriverEntry) -> None:
    for uuid in entry.service_uuids:
        classification = classify(None, [uuid.upper()])
        assert classification is not None
        assert classification.driver == entry.name
        assert classification.kind == entry.kind


def test_the_simulated_devices_lease_follows_their_drivers_safety_class() -> None:
    for spec in CATALOG:
        leased = registry.driver(spec.driver).safety_class is SafetyClass.LEASE
        assert spec.has_lease is leased, spec.key
