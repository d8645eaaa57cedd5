"""The front-end-neutral scan (``controller.session.scan``) and the role check it offers.

Scans run on a ``VirtualClock``: a scan lasts as long as the clock says, and its progress moves
only when the test moves the clock. The simulated devices say whether a scan touched them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller.session.scan import MANUAL, ScanError, role_problem, scan_devices
from controller.session.service import SessionRequest
from controller.session.simulation import SimulationError
from drivers.core.classify import Kind
from drivers.core.clock import VirtualClock
from profiles.errors import RelieveError
from simulators.hci_server import HciServer
from simulators.world import SimWorld

HEAT_PAD = "C0:DE:00:00:00:02"
GUN = "C0:DE:00:00:00:04"
THERAGUN = "C0:DE:00:00:00:05"
PROBE = "C0:DE:00:00:00:07"
DEVICES = ["heat-pad", "massage-gun", "theragun", "skin-probe"]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[SimWorld, str]]:
    """A world of ``DEVICES`` on a virtual clock, served over a socket: (world, its spec)."""
    world = SimWorld(clock=VirtualClock(), devices=DEVICES)
    async with world, await HciServer.start(world.link, f"unix:{tmp_path / 'sim.sock'}") as hci:
        yield world, hci.client_spec


async def _until_listening(clock: VirtualClock) -> None:
    for _ in range(1000):
        if clock.next_deadline() is not None:
            return
        await asyncio.sleep(0)
    raise AssertionError("the scan never started")


async def test_a_scan_lasts_its_time_on_the_clock_and_reports_its_progress(
    served: tuple[SimWorld, str],
) -> None:
    world, spec = served
    clock = world.clock
    assert isinstance(clock, VirtualClock)
    progress: list[float] = []
    request = SessionRequest(profile="heat-soak", simulator=spec, clock=clock)
    task = asyncio.create_task(scan_devices(request, timeout_s=5, on_progress=progress.append))
    await _until_listening(clock)
    await clock.advance(2)
    assert not task.done()  # two seconds of five: still listening
    assert progress[0] == 0.0
    assert progress[-1] == pytest.approx(0.4)
    await clock.advance(3)
    report = await task
    assert progress[-1] == 1.0
    assert progress == sorted(progress)
    assert len(progress) > 5  # it moved in steps, not in one jump
    assert report.simulated
    assert report.radio == f"the simulator at {spec}"
    assert report.seconds == 5
    by_address = {r.address: r for r in report.results}
    assert set(by_address) == {HEAT_PAD, GUN, THERAGUN, PROBE}
    assert by_address[HEAT_PAD].kind == "thermal"
    assert by_address[HEAT_PAD].safety_class == "lease"
    assert by_address[THERAGUN].safety_class == "host-timed"
    assert by_address[PROBE].kind == "probe"
    assert report.find(HEAT_PAD.lower()) == by_address[HEAT_PAD]
    for key in DEVICES:  # only listened: nothing connected, nothing switched on
        assert not world.device(key).connected
        assert not world.device(key).state.output_on


async def test_an_in_process_world_of_the_devices_asked_for() -> None:
    clock = VirtualClock()
    request = SessionRequest(profile="heat-soak", simulate=True, world=["heat-pad"], clock=clock)
    task = asyncio.create_task(scan_devices(request, timeout_s=1))
    await clock.run(task)
    report = task.result()
    assert [r.address for r in report.drivable] == [HEAT_PAD]
    assert report.radio == "the simulated devices"


async def test_a_simulator_that_does_not_answer_is_one_sentence(tmp_path: Path) -> None:
    request = SessionRequest(profile="heat-soak", simulator=f"unix:{tmp_path / 'nobody.sock'}")
    with pytest.raises(RelieveError) as caught:
        await scan_devices(request, timeout_s=5, clock=VirtualClock())
    message = str(caught.value)
    assert message.startswith("The simulated radio is not available: Cannot reach")
    assert "\n" not in message


async def test_a_bad_simulator_spec_is_one_sentence() -> None:
    request = SessionRequest(profile="heat-soak", simulator="no-colon-here")
    with pytest.raises(SimulationError) as caught:
        await scan_devices(request, timeout_s=5, clock=VirtualClock())
    assert "\n" not in str(caught.value)
    assert "no-colon-here" in str(caught.value)


async def test_no_bluetooth_service_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    with pytest.raises(RelieveError) as caught:
        await scan_devices(SessionRequest(profile="heat-soak"), timeout_s=5, clock=VirtualClock())
    message = str(caught.value)
    assert message.startswith("Bluetooth is not available")
    assert message.endswith("or try the simulated devices with --simulate.")


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan"), float("inf")])
async def test_a_scan_of_no_time_is_refused(seconds: float) -> None:
    request = SessionRequest(profile="heat-soak", simulate=True, clock=VirtualClock())
    with pytest.raises(ScanError, match="positive number of seconds"):
        await scan_devices(request, timeout_s=seconds)


async def test_a_clock_of_its_own_needs_simulated_devices() -> None:
    with pytest.raises(RelieveError, match="simulated devices"):
        await scan_devices(SessionRequest(profile="heat-soak", clock=VirtualClock()), timeout_s=1)


# --- the role check -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "kind"),
    [("heat", "thermal"), ("cold", "thermal"), ("gun", "percussion"), ("probe", "probe")],
)
def test_a_device_of_the_right_kind_fits(role: str, kind: Kind) -> None:
    assert role_problem(role, HEAT_PAD, kind) is None


@pytest.mark.parametrize(
    ("role", "kind", "said"),
    [
        ("heat", "percussion", "is a massage gun, not a heat pad; choose a heat pad for heat."),
        ("cold", "probe", "is a skin probe, not a cold pad; choose a cold pad for cold."),
        ("gun", "thermal", "is a heat or cold pad, not a massage gun; choose a massage gun"),
        ("probe", "thermal", "is a heat or cold pad, not a skin probe; choose a skin probe"),
        ("heat", None, "is not a device relieve knows; choose a heat pad for heat."),
    ],
)
def test_a_device_of_the_wrong_kind_is_one_sentence(
    role: str, kind: Kind | None, said: str
) -> None:
    problem = role_problem(role, GUN.lower(), kind)
    assert problem is not None
    assert problem.startswith(GUN)  # as the scan shows addresses
    assert said in problem
    assert problem.count(";") == 1
    assert problem.endswith(".")
    assert "\n" not in problem


def test_the_name_makes_the_sentence_easier_to_read() -> None:
    problem = role_problem("heat", GUN, "percussion", name="relieve Massage Gun")
    assert problem is not None
    assert problem.startswith(f"relieve Massage Gun ({GUN}) is a massage gun")


def test_a_device_relieve_cannot_drive_is_refused() -> None:
    problem = role_problem("gun", "C0:DE:00:00:00:99", "percussion", drivable=False)
    assert problem == "relieve cannot drive C0:DE:00:00:00:99; choose another massage gun for gun."


@pytest.mark.parametrize("role", ["heat", "cold", "gun"])
def test_manual_fits_heat_cold_and_gun(role: str) -> None:
    assert role_problem(role, MANUAL) is None


def test_a_probe_cannot_be_manual() -> None:
    problem = role_problem("probe", MANUAL)
    assert problem is not None
    assert problem.startswith("A probe cannot be manual")
    assert problem.count(".") == 1
    assert problem.endswith(".")


def test_an_unknown_role_names_the_roles() -> None:
    assert role_problem("massage", MANUAL) == (
        "'massage' is not a role; the roles are heat, cold, gun, probe."
    )
