"""``relieve scan`` and ``relieve device ...`` against the simulated devices.

Commands that only look (scan, refusals) run through ``cli.main`` in real time. Commands that
run an output for a while run :func:`controller.cli.device.run_device` on a virtual clock, with
the simulated world kept at hand to check what the device really did.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.cli import commands as cli
from controller.cli import device as device_cmd
from controller.session.simulation import Radio, SimulationError, open_radio
from drivers.core.base import DeviceError, DeviceNotFoundError
from drivers.core.clock import VirtualClock
from simulators import backend as sim_backend
from simulators.faults import StuckHeater
from simulators.hci_server import HciServer
from simulators.world import SimWorld

HEAT_PAD = "C0:DE:00:00:00:02"
CONTRAST_PAD = "C0:DE:00:00:00:01"
GUN = "C0:DE:00:00:00:04"
THERAGUN = "C0:DE:00:00:00:05"
MAT = "C0:DE:00:00:00:06"
PROBE = "C0:DE:00:00:00:07"
SCAN = ["--timeout", "0.1"]


@dataclass
class Run:
    """A virtual-clock run of ``relieve device ...`` in the simulated world."""

    clock: VirtualClock
    radio: Radio

    @property
    def world(self) -> SimWorld:
        assert self.radio.world is not None
        return self.radio.world

    def start(self, *argv: str) -> tuple[asyncio.Task[int], io.StringIO, io.StringIO]:
        args = cli.build_parser().parse_args(["device", *argv, "--simulate"])
        out, err = io.StringIO(), io.StringIO()
        task = asyncio.get_running_loop().create_task(
            device_cmd.run_device(args, clock=self.clock, out=out, err=err, radio=self.radio)
        )
        return task, out, err

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        task, out, err = self.start(*argv)
        await self.clock.run(task)
        return task.result(), out.getvalue(), err.getvalue()


@pytest.fixture
async def run() -> AsyncIterator[Run]:
    clock = VirtualClock()
    async with open_radio(simulate=True, clock=clock) as radio:
        yield Run(clock, radio)


def main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- scan ---------------------------------------------------------------------------------------


def test_scan_json_lists_every_simulated_device(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = main(capsys, "scan", "--simulate", "--json", *SCAN)

    assert code == 0
    found = {entry["address"]: entry for entry in json.loads(out)}
    assert found[HEAT_PAD]["kind"] == "thermal"
    assert found[HEAT_PAD]["driver"] == "open-thermal"
    assert found[HEAT_PAD]["safety_class"] == "lease"
    assert found[THERAGUN]["driver"] == "theragun"
    assert found[THERAGUN]["safety_class"] == "host-timed"
    assert found[MAT]["driver"] == "heating-mat"
    assert found[PROBE]["kind"] == "probe"
    assert len(found) == 7
    assert all(entry["rssi"] == -50 and entry["name"] for entry in found.values())


def test_scan_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = main(capsys, "scan", "--simulate", *SCAN)

    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["ADDRESS", "NAME", "KIND", "DRIVER", "RSSI", "SAFETY"]
    assert any(line.startswith(MAT) and "host-timed" in line for line in lines)
    assert len(lines) == 8


async def test_scan_through_a_simulator_server(tmp_path: Path) -> None:
    world = SimWorld(devices=["heat-pad", "skin-probe"])
    socket = tmp_path / "sim.sock"
    async with world, await HciServer.start(world.link, f"unix:{socket}") as server:
        args = cli.build_parser().parse_args(
            ["scan", "--simulator", server.client_spec, "--json", *SCAN]
        )
        out = io.StringIO()
        assert await device_cmd.run_scan(args, clock=VirtualClock(), out=out) == 0
        await sim_backend.reset()
    assert {entry["address"] for entry in json.loads(out.getvalue())} == {HEAT_PAD, PROBE}


def test_an_unreachable_simulator_is_one_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = main(capsys, "scan", "--simulator", f"unix:{tmp_path / 'none.sock'}", *SCAN)
    assert code == 1
    assert err.startswith("relieve: The simulated radio is not available: Cannot reach")
    assert "Traceback" not in err


# --- running outputs ----------------------------------------------------------------------------


async def test_device_heat_runs_for_the_duration_and_ends_with_the_pad_off(run: Run) -> None:
    code, out, err = await run("heat", HEAT_PAD, "--celsius", "40", "--for", "1m30s")

    assert code == 0
    assert err == ""
    assert out.startswith(f"Heating relieve Heat Pad ({HEAT_PAD}) to 40 °C for 1m30s.")
    assert "lease" in out.splitlines()[0]
    progress = [line for line in out.splitlines() if line.startswith("  ")]
    assert [line.split()[0] for line in progress] == ["0:30", "1:00"]
    assert out.rstrip().endswith(f"Done: relieve Heat Pad ({HEAT_PAD}) is OFF.")
    pad = run.world.pad("heat-pad").state
    assert pad.mode == "off"
    assert not pad.connected
    assert pad.plate_c is not None
    assert pad.plate_c > 38.0  # it did heat
    assert not pad.flags  # switched off by relieve, not by an expired lease


async def test_device_cold_and_gun_end_with_the_output_off(run: Run) -> None:
    code, out, _ = await run("cold", CONTRAST_PAD, "--celsius", "12", "--for", "2m")
    assert code == 0
    assert run.world.pad("contrast-pad").state.mode == "off"
    plate = run.world.pad("contrast-pad").state.plate_c
    assert plate is not None
    assert plate < 20.0
    assert "Cooling" in out

    code, out, _ = await run("gun", THERAGUN, "--level", "medium", "--for", "45s")
    assert code == 0
    assert "at 2100 per minute" in out
    assert "Host-timed" in out
    assert not run.world.theragun().state.output_on

    code, _, _ = await run("gun", GUN, "--rpm", "2400", "--for", "30s")
    assert code == 0
    assert not run.world.gun().state.output_on


async def test_device_heat_on_the_mat_uses_a_level_and_its_backstop_timer(run: Run) -> None:
    task, out, _ = run.start("heat", MAT, "--celsius", "40", "--for", "5m")
    while "Heating" not in out.getvalue():
        await run.clock.advance(0.1)
        await asyncio.sleep(0.001)
    await run.clock.advance(10)
    mat = run.world.mat().state
    assert mat.level == 5
    assert mat.timer_remaining_s is not None
    assert mat.timer_remaining_s > 3000
    await run.clock.run(task)

    assert task.result() == 0
    assert "at level 5 (40 °C)" in out.getvalue()
    assert "timer is set to 1h" in out.getvalue()
    assert run.world.mat().state.level == 0


async def test_ctrl_c_turns_the_output_off_before_exiting(run: Run) -> None:
    task, out, _ = run.start("heat", CONTRAST_PAD, "--celsius", "41", "--for", "10m")
    while "Heating" not in out.getvalue():
        await run.clock.advance(0.1)
        await asyncio.sleep(0.001)
    await run.clock.advance(20)
    assert run.world.pad("contrast-pad").state.mode == "heat"

    task.cancel()  # what asyncio.run does with the main task on SIGINT
    with pytest.raises(asyncio.CancelledError):
        await task

    assert run.world.pad("contrast-pad").state.mode == "off"
    assert not run.world.pad("contrast-pad").state.flags
    assert (
        out.getvalue().rstrip().endswith(f"Stopped: relieve Contrast Pad ({CONTRAST_PAD}) is OFF.")
    )


async def test_a_stuck_heater_ends_the_run_with_an_error_and_off_sent(run: Run) -> None:
    run.world.inject("heat-pad", StuckHeater(at=30))
    task, out, _ = run.start("heat", HEAT_PAD, "--celsius", "40", "--for", "5m")
    await run.clock.run(task)

    with pytest.raises(DeviceError, match=r"over-temperature|stuck-output"):
        task.result()
    assert run.world.pad("heat-pad").state.mode == "off"
    assert "Done" not in out.getvalue()


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "limit_id"),
    [
        (["heat", HEAT_PAD, "--celsius", "46", "--for", "1m"], "H1"),
        (["heat", HEAT_PAD, "--celsius", "44", "--for", "10m"], "H1"),
        (["heat", HEAT_PAD, "--celsius", "40", "--for", "25m"], "H2"),
        (["cold", CONTRAST_PAD, "--celsius", "4", "--for", "5m"], "C4"),
        (["cold", CONTRAST_PAD, "--celsius", "12", "--for", "21m"], "C1"),
        (["gun", GUN, "--level", "low", "--for", "16m"], "M1"),
        (["heat", MAT, "--celsius", "42", "--for", "6m"], "H1L"),
    ],
)
def test_limits_are_refused_with_their_id(
    capsys: pytest.CaptureFixture[str], argv: list[str], limit_id: str
) -> None:
    code, out, err = main(capsys, "device", *argv, "--simulate")

    assert code == 1
    assert out == ""
    assert err.startswith("relieve: ")
    assert err.rstrip().endswith(f"({limit_id}).")
    assert err.count("\n") == 1


@pytest.mark.parametrize("duration", ["90", "5x", "1m30", "0s", "-5m", ""])
def test_bad_durations_are_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str], duration: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["device", "heat", HEAT_PAD, "--celsius", "40", "--for", duration, "--simulate"])
    assert exited.value.code == 2
    assert "argument --for:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("1m30s", 90), ("1h", 3600), ("2.5s", 2.5)]
)
def test_durations_parse_and_print_back(text: str, seconds: float) -> None:
    assert device_cmd.parse_duration(text) == seconds
    if seconds == int(seconds):
        assert device_cmd.parse_duration(device_cmd.format_duration(seconds)) == seconds


def test_the_wrong_kind_of_device_is_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = main(
        capsys, "device", "gun", HEAT_PAD, "--level", "low", "--for", "1m", "--simulate"
    )
    assert code == 1
    assert "is a thermal device, not a percussion device; use relieve device heat / cold." in err


async def test_an_absent_device_is_one_sentence(run: Run) -> None:
    quick = dataclasses.replace(run.radio.backend, find_timeout_s=0.1)
    run.radio = dataclasses.replace(run.radio, backend=quick)

    with pytest.raises(DeviceNotFoundError) as absent:
        await run("off", "C0:DE:00:00:00:99")

    message = str(absent.value)
    assert message.startswith("Nothing answers at C0:DE:00:00:00:99")
    assert message.endswith("(relieve scan lists what is in range).")
    assert "\n" not in message


def test_simulate_and_simulator_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["scan", "--simulate", "--simulator", "unix:/x"])
    assert "not allowed with argument" in capsys.readouterr().err


async def test_open_radio_builds_a_world_of_the_devices_asked_for() -> None:
    async with open_radio(simulate=True, clock=VirtualClock(), devices=["heat-pad"]) as radio:
        assert radio.simulated
        assert radio.world is not None
        assert radio.world.keys == ("heat-pad",)
        args = cli.build_parser().parse_args(["scan", "--simulate", "--json", *SCAN])
        out = io.StringIO()
        await device_cmd.run_scan(args, clock=VirtualClock(), out=out, radio=radio)
    assert [entry["address"] for entry in json.loads(out.getvalue())] == [HEAT_PAD]
    with pytest.raises(SimulationError, match="toaster"):
        async with open_radio(simulate=True, devices=["toaster"]):
            pass


async def test_open_radio_refuses_both_simulations() -> None:
    with pytest.raises(SimulationError, match="either"):
        async with open_radio(simulate=True, simulator="unix:/x"):
            pass


# --- looking ------------------------------------------------------------------------------------


async def test_device_info_json_of_a_pad(run: Run) -> None:
    code, out, _ = await run("info", CONTRAST_PAD, "--json")

    assert code == 0
    info = json.loads(out)
    assert (info["name"], info["kind"], info["driver"]) == (
        "relieve Contrast Pad",
        "thermal",
        "open-thermal",
    )
    assert (info["model"], info["firmware"], info["battery"]) == ("RLV-CP1", "1.0.0", 100)
    assert info["safety_class"] == "lease"
    assert info["caps"]["max_lease_s"] == 5.0
    assert info["celsius"] == pytest.approx(33.0, abs=0.5)


async def test_device_info_of_the_probe_has_a_temperature(run: Run) -> None:
    code, out, _ = await run("info", PROBE)

    assert code == 0
    fields = dict(line.split(":", 1) for line in out.splitlines())
    assert fields["kind"].strip() == "probe"
    assert fields["safety class"].strip().startswith("none")
    assert fields["temperature"].strip() == "33.00 °C"


async def test_device_watch_prints_what_the_device_reports(run: Run) -> None:
    code, out, _ = await run("watch", PROBE, "--for", "5s")

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Watching relieve Skin Probe ({PROBE}) for 5s; Ctrl-C ends."
    readings = [line for line in lines[1:] if line.endswith("°C")]
    assert len(readings) >= 4


async def test_device_off_switches_off_a_device_left_running(run: Run) -> None:
    # Another host left the Theragun running (host-timed: it keeps going on its own).
    gun = run.world.theragun()
    gun.core.set_speed(2000, run.clock.now())
    assert gun.state.output_on

    code, out, _ = await run("off", THERAGUN)

    assert code == 0
    assert out == f"Pro ({THERAGUN}) is OFF.\n"
    assert not run.world.theragun().state.output_on
