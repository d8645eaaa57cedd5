"""The terminal UI with a node daemon on its data directory: its sessions run there.

Each test runs a :class:`~controller.daemon.server.NodeDaemon` in-process on a virtual clock,
its sessions on a simulated heat pad and cold pad served through an in-test ``HciServer``, and
the app against the daemon's socket with Textual's Pilot at 80x24. The app's request carries no
radio options (the daemon's radio is used): only the roles, by address. Time moves only when a
test moves it; every wait is bounded in looks and in real seconds. What is checked is what a
person sees: the app's screen, what the simulated devices themselves report, what the daemon
says in its status and what the history recorded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import ListView, Static

from controller.cli.commands import main
from controller.daemon.client import connect
from controller.daemon.server import NodeDaemon, Radio
from controller.ledger import Ledger
from controller.library import ProfileLibrary
from controller.session.service import Session, SessionRequest, SessionService
from drivers.core.clock import VirtualClock
from simulators.faults import RefuseConnections
from simulators.hci_server import HciServer
from simulators.world import SimWorld
from tests.session_harness import CONTRAST_MINI
from tests.tui_rig import output_off
from tui.app import DETACHED, LEAVE_RUNNING, RADIO_OWNED, RelieveApp, build_app
from tui.screens.confirm import ConfirmScreen
from tui.screens.devices import DevicesScreen
from tui.screens.home import HomeScreen
from tui.screens.session import SessionScreen

PAD = "heat-pad"
COLD_PAD = "cold-pad"
PADS = (PAD, COLD_PAD)
ROLES = {"heat": "C0:DE:00:00:00:02", "cold": "C0:DE:00:00:00:03"}
PROFILE = "contrast-mini"  # the user's own profile (CONTRAST_MINI): heat 2 min, cold 2 min
STEP_S = 5.0  # clock seconds moved between looks while the daemon's session runs
LOOKS = 2000  # at most this many looks for a condition ...
WAIT_S = 30.0  # ... and at most this many real seconds
REAL_LOOK_S = 0.005  # real seconds between looks (the events travel over the socket)


@dataclass
class Node:
    """The daemon of a data directory, on a simulated world of its own."""

    clock: VirtualClock
    world: SimWorld
    daemon: NodeDaemon
    data_dir: Path
    service: SessionService

    def session(self) -> Session | None:
        """The daemon's session (in this process), or None."""
        current = self.daemon.current
        return current.session if current is not None else None

    def status(self) -> dict[str, Any] | None:
        """The session as the daemon's status shows it (what ``relieve status`` prints)."""
        found: dict[str, Any] | None = self.daemon.status()["session"]
        return found

    def outcomes(self) -> list[str | None]:
        """What the history recorded (read from the file, as another process would)."""
        with Ledger.open(self.data_dir, simulated=True) as ledger:
            return [s.outcome for s in ledger.sessions()]

    def pads_off(self) -> bool:
        return all(output_off(self.world, key) for key in PADS)

    def heat_on(self) -> bool:
        return self.world.pad(PAD).state.output_on


@asynccontextmanager
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    clock = VirtualClock()
    config = tmp_path / "config"
    (config / "profiles").mkdir(parents=True, exist_ok=True)
    (config / "profiles" / f"{PROFILE}.toml").write_text(CONTRAST_MINI, encoding="utf-8")
    data_dir = tmp_path / "data"
    world = SimWorld(clock=clock, devices=list(PADS))
    async with world, await HciServer.start(world.link, f"unix:{tmp_path / 'sim.sock'}") as hci:
        with Ledger.open(data_dir, simulated=True) as ledger:
            service = SessionService(ProfileLibrary(config), config_dir=config)
            radio = Radio(simulator=hci.client_spec, clock=clock)
            daemon = NodeDaemon(service, ledger, data_dir, radio)
            task = asyncio.create_task(daemon.serve(handle_signals=False))
            await asyncio.wait_for(daemon.ready.wait(), WAIT_S)
            try:
                yield Node(clock, world, daemon, data_dir, service)
            finally:
                # a session still running (a test that failed) ends with every device OFF
                daemon.shutdown("the test ended")
                deadline = time.monotonic() + WAIT_S
                while not task.done() and time.monotonic() < deadline:
                    await clock.advance(1)
                    await asyncio.sleep(REAL_LOOK_S)
                await asyncio.wait_for(task, WAIT_S)


def tui_request(**changes: Any) -> SessionRequest:
    """What ``relieve tui contrast-mini --heat ... --cold ...`` asks: no radio options."""
    fields: dict[str, Any] = {"profile": PROFILE, "roles": dict(ROLES), "started_by": "tui"}
    return SessionRequest(**(fields | changes))


@dataclass
class View:
    """The app on the node, and what its screen shows."""

    app: RelieveApp
    pilot: Pilot[int]
    node: Node

    @property
    def screen(self) -> SessionScreen:
        screen = self.app.session_screen
        assert screen is not None
        return screen

    def text(self, selector: str) -> str:
        widget = self.screen.query_one(selector, Static)
        return str(widget.render()) if widget.display else ""

    def toasts(self) -> list[str]:
        """The notifications shown on the screen now."""
        return [str(toast.render()) for toast in self.app.screen.query("Toast")]

    async def until(self, condition: Callable[[], bool], *, move_time: bool = True) -> None:
        """Look until ``condition`` holds; between looks the clock moves on while the daemon's
        session runs (binding, on the simulator's socket, needs no clock time)."""
        deadline = time.monotonic() + WAIT_S
        for _ in range(LOOKS):
            if condition():
                await self.pilot.pause()  # the screen catches up
                return
            if time.monotonic() > deadline:
                break
            session = self.node.session()
            if move_time and session is not None and session.running:
                await self.node.clock.advance(STEP_S)
            await self.pilot.pause()
            await asyncio.sleep(REAL_LOOK_S)
        raise AssertionError("the app never got there")

    async def phase(self, mode: str) -> None:
        def shown() -> bool:
            phase = self.screen.model.phase
            return phase is not None and phase.mode == mode

        await self.until(shown)

    async def exited(self) -> None:
        await self.until(lambda: not self.app.is_running, move_time=False)


@asynccontextmanager
async def tui(
    n: Node,
    *,
    start: bool = True,
    request: SessionRequest | None = None,
    data_dir: Path | None = None,
    yes: bool = True,
) -> AsyncIterator[View]:
    """The app with a ledger of its own on the node's data directory, as ``relieve tui``."""
    with Ledger.open(n.data_dir, simulated=True) as ledger:
        app = build_app(
            request or tui_request(),
            service=n.service,
            ledger=ledger,
            yes=yes,
            start=start,
            data_dir=data_dir or n.data_dir,
        )
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            yield View(app, pilot, n)


async def until_daemon(n: Node, condition: Callable[[], bool]) -> None:
    """Move the node's clock on (while its session runs) until ``condition`` holds."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "the daemon never got there"
        session = n.session()
        if session is not None and session.running:
            await n.clock.advance(STEP_S)
        await asyncio.sleep(REAL_LOOK_S)


def daemon_phase(n: Node) -> str | None:
    found = n.status()
    phase = found.get("phase") if found is not None else None
    return phase.get("mode") if isinstance(phase, dict) else None


async def start_elsewhere(n: Node) -> None:
    """A session started by another client (``relieve run`` in another terminal), which then
    goes away: the session goes on in the daemon, in its heat phase."""
    connection = await connect(n.data_dir)
    assert connection is not None
    try:
        await connection.request(
            "start",
            timeout_s=WAIT_S,
            profile=PROFILE,
            roles=dict(ROLES),
            confirmed=["heat", "cold"],
            started_by="cli",
        )
    finally:
        await connection.close()
    await until_daemon(n, lambda: daemon_phase(n) == "heat" and n.heat_on())


async def stop_in_daemon(n: Node) -> None:
    """``relieve stop``: the daemon's session ends with every device OFF."""
    session = n.session()
    assert session is not None
    session.stop("stopped by relieve stop")
    await until_daemon(n, lambda: n.session() is None)


# --- a session the TUI starts ----------------------------------------------------------------


async def test_a_profile_started_in_the_tui_runs_in_the_daemon_and_s_stops_it(
    tmp_path: Path,
) -> None:
    async with node(tmp_path) as n, tui(n) as v:
        await v.phase("heat")
        status = n.status()
        assert status is not None
        assert status["started_by"] == "tui"
        assert status["profile"] == PROFILE
        assert "HEAT 42 °C" in v.text("#phase")
        assert "Contrast, one short cycle" in v.text("#title")
        assert "heat Heat Pad: linked" in v.text("#devices")
        assert "SIMULATED" in v.text("#badge")
        assert v.screen.model.plan is None  # the daemon holds the plan: no timeline here
        assert v.text("#timeline") == ""
        await v.until(n.heat_on)
        await v.pilot.press("space")  # pause: every output OFF, in the daemon
        await v.until(lambda: n.pads_off() and "PAUSED" in v.text("#title"))
        status = n.status()
        assert status is not None
        assert status["state"] == "paused"
        await v.pilot.press("space")
        await v.until(n.heat_on)
        await v.pilot.press("s")
        await v.until(lambda: v.app.finished is not None and not v.app.busy)
        assert v.app.finished is not None
        assert v.app.finished.outcome == "stopped"
        assert v.app.finished.devices_off
        assert "Session stopped (stopped by relieve tui" in v.text("#summary")
        assert "Every device is OFF" in v.text("#summary")
        assert n.pads_off()
        assert n.status() is None
        assert v.app.is_running  # the TUI stays; q now quits at once
        await v.pilot.press("q")
        await v.exited()
        assert v.app.return_value == 0
    assert n.outcomes() == ["stopped"]


async def test_the_home_screen_starts_the_profile_in_the_daemon(tmp_path: Path) -> None:
    async with node(tmp_path) as n, tui(n, start=False) as v:
        await v.pilot.pause()
        home = v.app.screen
        assert isinstance(home, HomeScreen)
        await v.until(lambda: home.refreshes > 0, move_time=False)
        home.query_one("#profiles", ListView).index = home.names.index(PROFILE)
        await v.pilot.press("enter")
        await v.phase("heat")
        status = n.status()
        assert status is not None
        assert status["started_by"] == "tui"
        await v.pilot.press("ctrl+c")  # stops, as in a session of this process
        await v.until(lambda: v.app.finished is not None and not v.app.busy)
        assert v.app.finished is not None
        assert v.app.finished.outcome == "stopped"
        assert n.pads_off()
        await v.pilot.press("escape")  # back to the profiles
        await v.pilot.pause()
        assert isinstance(v.app.screen, HomeScreen)
    assert n.outcomes() == ["stopped"]


async def test_ctrl_c_while_the_precautions_are_asked_starts_nothing_in_the_daemon(
    tmp_path: Path,
) -> None:
    async with node(tmp_path) as n, tui(n, yes=False) as v:
        await v.until(lambda: isinstance(v.app.screen, ConfirmScreen), move_time=False)
        question = v.app.screen
        assert isinstance(question, ConfirmScreen)
        assert "fabric" in question.text  # the heat pad's precaution, asked here
        await v.pilot.press("ctrl+c")
        await v.until(lambda: not v.app.busy, move_time=False)
        assert not isinstance(v.app.screen, ConfirmScreen)
        assert "nothing was started" in v.text("#summary")
        assert v.app.is_running
        await asyncio.sleep(0.1)  # nothing more reaches the daemon
        assert n.status() is None
        assert n.pads_off()
    assert n.outcomes() == []


# --- a session the daemon already runs -------------------------------------------------------


@pytest.mark.parametrize("profile_given", [False, True])
async def test_the_tui_opens_on_the_session_the_daemon_already_runs(
    tmp_path: Path, profile_given: bool
) -> None:
    async with node(tmp_path) as n:
        await start_elsewhere(n)
        async with tui(n, start=profile_given) as v:
            await v.until(lambda: "HEAT 42 °C" in v.text("#phase"), move_time=False)
            assert isinstance(v.app.screen, SessionScreen)
            assert "Contrast, one short cycle" in v.text("#title")
            assert "RUNNING" in v.text("#title")
            assert "heat Heat Pad: linked" in v.text("#devices")
            if profile_given:  # relieve tui PROFILE: not started, and said so
                await v.until(lambda: bool(v.toasts()), move_time=False)
                toasts = " ".join(v.toasts())
                assert "A session is already running on this node" in toasts
                assert PROFILE in toasts
            status = n.status()
            assert status is not None
            assert status["started_by"] == "cli"  # the same session, not a second one
            await v.phase("cold")  # it goes on, shown as it goes
            assert "COLD 12 °C" in v.text("#phase")
            await v.pilot.press("s")
            await v.until(lambda: v.app.finished is not None and not v.app.busy)
            assert v.app.finished is not None
            assert v.app.finished.outcome == "stopped"
            assert n.pads_off()
    assert n.outcomes() == ["stopped"]


# --- leaving a daemon session ----------------------------------------------------------------


async def test_q_and_yes_leaves_the_daemon_session_running_and_exits_0(tmp_path: Path) -> None:
    async with node(tmp_path) as n:
        async with tui(n) as v:
            await v.phase("heat")
            await v.until(n.heat_on)
            await v.pilot.press("q")
            await v.until(lambda: isinstance(v.app.screen, ConfirmScreen), move_time=False)
            question = v.app.screen
            assert isinstance(question, ConfirmScreen)
            assert question.text == LEAVE_RUNNING
            await v.pilot.press("n")  # no: nothing changes
            await v.pilot.pause()
            assert v.app.is_running
            assert v.app.session is not None
            await v.pilot.press("q")
            await v.until(lambda: isinstance(v.app.screen, ConfirmScreen), move_time=False)
            await v.pilot.press("y")
            await v.exited()
            assert v.app.return_value == 0
            assert v.app.summary() == DETACHED
        # the session goes on in the daemon, the heat on
        assert n.status() is not None
        assert n.heat_on()
        await n.clock.advance(20)
        await asyncio.sleep(0.05)
        assert n.status() is not None
        assert n.heat_on()
        assert n.outcomes() == ["running"]
        await stop_in_daemon(n)
        assert n.pads_off()
        assert n.outcomes() == ["stopped"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
async def test_sigterm_and_sighup_leave_the_daemon_session_running(
    tmp_path: Path, sig: signal.Signals
) -> None:
    async with node(tmp_path) as n:
        async with tui(n) as v:
            await v.phase("heat")
            await v.until(n.heat_on)
            assert sig in v.app.handled_signals  # else the signal would end the test run
            os.kill(os.getpid(), sig)
            await v.exited()
            assert v.app.return_value == 0
        assert n.status() is not None
        assert n.heat_on()
        await stop_in_daemon(n)
        assert n.pads_off()
        assert n.outcomes() == ["stopped"]


async def test_sigint_stops_the_daemon_session_before_the_app_exits(tmp_path: Path) -> None:
    async with node(tmp_path) as n:
        async with tui(n) as v:
            await v.phase("heat")
            await v.until(n.heat_on)
            os.kill(os.getpid(), signal.SIGINT)
            await v.exited()
            assert v.app.finished is not None
            assert v.app.finished.outcome == "stopped"
            assert v.app.finished.devices_off
        assert n.status() is None
        assert n.pads_off()
        assert n.outcomes() == ["stopped"]


async def test_a_lost_connection_is_one_sentence_and_the_session_goes_on(tmp_path: Path) -> None:
    async with node(tmp_path) as n:
        async with tui(n) as v:
            await v.phase("heat")
            await v.until(n.heat_on)
            for client in list(n.daemon.clients):
                client.close()  # the daemon drops the TUI (as it drops a client too slow)
            await v.until(lambda: not v.app.busy, move_time=False)
            summary = v.text("#summary")
            assert summary.startswith("The connection to the node daemon was lost")
            assert "\n" not in summary.strip()
            assert "DISCONNECTED" in v.text("#title")
            assert v.app.is_running
            await v.pilot.press("q")  # no session of its own now: quits at once
            await v.exited()
            assert v.app.return_value == 1
        assert n.status() is not None  # it goes on in the daemon
        assert n.heat_on()
        await stop_in_daemon(n)
        assert n.outcomes() == ["stopped"]


async def test_the_resume_question_from_the_daemon_is_asked_in_a_modal(tmp_path: Path) -> None:
    async with node(tmp_path) as n, tui(n) as v:
        await v.phase("heat")
        await v.until(n.heat_on)
        n.world.inject(PAD, RefuseConnections(at=1, duration=20, hide=True))
        await v.until(lambda: isinstance(v.app.screen, ConfirmScreen))
        question = v.app.screen
        assert isinstance(question, ConfirmScreen)
        assert "Resume when it is back?" in question.text
        assert n.pads_off()  # paused, every output OFF, while the person is asked
        await n.clock.advance(40)  # the pad advertises again and the link comes back
        await asyncio.sleep(0.05)
        await v.pilot.pause()
        assert not n.heat_on()  # nothing resumes before the answer
        await v.pilot.press("y")
        await v.until(n.heat_on)  # the link came back and the heat is on again
        await v.pilot.press("s")
        await v.until(lambda: v.app.finished is not None and not v.app.busy)
        assert n.pads_off()
    assert n.outcomes() == ["stopped"]


# --- what the daemon refuses ------------------------------------------------------------------


async def test_the_devices_screen_is_refused_while_the_daemon_owns_the_radio(
    tmp_path: Path,
) -> None:
    async with node(tmp_path) as n, tui(n, start=False) as v:
        await v.pilot.pause()
        assert isinstance(v.app.screen, HomeScreen)
        await v.pilot.press("d")
        await v.until(lambda: bool(v.toasts()), move_time=False)
        assert not isinstance(v.app.screen, DevicesScreen)
        assert isinstance(v.app.screen, HomeScreen)
        assert RADIO_OWNED.split(";")[0] in " ".join(v.toasts())
    assert n.outcomes() == []


async def test_radio_options_the_daemon_cannot_take_are_refused_in_one_sentence(
    tmp_path: Path,
) -> None:
    async with node(tmp_path) as n:
        request = tui_request(simulate=True, speed=10.0)  # relieve tui --simulate --speed 10
        async with tui(n, request=request) as v:
            await v.until(lambda: v.app.refused is not None, move_time=False)
            summary = v.text("#summary")
            assert summary == v.app.refused
            assert summary.startswith("A node daemon (relieve serve) owns this data directory")
            assert "leave out --simulate, --simulator and --speed" in summary
            assert "\n" not in summary.strip()
            assert n.status() is None  # nothing was started
            await v.pilot.press("q")
            await v.exited()
            assert v.app.return_value == 1
        assert n.pads_off()
        assert n.outcomes() == []


# --- without a daemon, and from the command line ---------------------------------------------


async def test_without_a_daemon_the_session_runs_in_the_tui_as_ever(tmp_path: Path) -> None:
    clock = VirtualClock()
    config = tmp_path / "config"
    (config / "profiles").mkdir(parents=True)
    (config / "profiles" / f"{PROFILE}.toml").write_text(CONTRAST_MINI, encoding="utf-8")
    data_dir = tmp_path / "data"
    world = SimWorld(clock=clock, devices=list(PADS))
    async with world, await HciServer.start(world.link, f"unix:{tmp_path / 'sim.sock'}") as hci:
        request = tui_request(simulator=hci.client_spec, clock=clock)
        service = SessionService(ProfileLibrary(config), config_dir=config)
        with Ledger.open(data_dir, simulated=True) as ledger:
            app = build_app(request, service=service, ledger=ledger, yes=True, data_dir=data_dir)
            async with app.run_test(size=(80, 24)) as pilot:
                deadline = time.monotonic() + WAIT_S
                while not world.pad(PAD).state.output_on:
                    assert time.monotonic() < deadline
                    session = app.session
                    if session is not None and session.running:
                        await clock.advance(STEP_S)
                    await pilot.pause()
                assert app.node is None
                assert app.session_screen is not None
                assert app.session_screen.model.plan is not None  # in this process
                await pilot.press("q")
                await pilot.pause()
                question = app.screen
                assert isinstance(question, ConfirmScreen)
                assert question.text.startswith("Stop the session and quit?")
                await pilot.press("y")
                while app.is_running:
                    assert time.monotonic() < deadline
                    await clock.advance(1)
                    await pilot.pause()
                assert app.finished is not None
                assert app.finished.outcome == "stopped"
                assert output_off(world, PAD)
            assert [s.outcome for s in ledger.sessions()] == ["stopped"]


def test_relieve_tui_looks_for_the_daemon_on_its_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked: list[Path | None] = []

    def run(app: RelieveApp) -> int:
        looked.append(app.launch.data_dir)
        return 0

    monkeypatch.setattr(RelieveApp, "run", run)
    data_dir = tmp_path / "node"
    assert main(["--config-dir", str(tmp_path), "--data-dir", str(data_dir), "tui"]) == 0
    monkeypatch.setenv("RELIEVE_DATA_DIR", str(tmp_path / "default"))
    assert main(["--config-dir", str(tmp_path), "tui"]) == 0
    assert main(["--config-dir", str(tmp_path), "demo", "--tui"]) == 0
    assert looked == [data_dir, tmp_path / "default", None]  # the demo: a throw-away history


async def test_arm_remote_start_asks_the_precautions_in_modals_and_arms_the_daemon(
    tmp_path: Path,
) -> None:
    async with node(tmp_path) as n:
        n.daemon.remote_profiles = (PROFILE,)
        async with tui(n, start=False, yes=False) as v:
            await v.until(lambda: v.app.node is not None, move_time=False)
            commands = [c.title for c in v.app.get_system_commands(v.app.screen)]
            assert "Arm remote start" in commands
            v.app.action_arm()
            for _ in range(2):  # heat, then cold: each in its own modal, answered yes
                await v.until(lambda: isinstance(v.app.screen, ConfirmScreen), move_time=False)
                await v.pilot.press("y")
            await v.until(lambda: n.daemon.armed_until() is not None, move_time=False)
            assert n.daemon.armed is not None
            assert n.daemon.armed[0] == {"heat", "cold"}
            await v.until(lambda: any("armed until" in t for t in v.toasts()), move_time=False)


async def test_arm_remote_start_answered_no_leaves_the_daemon_unarmed(tmp_path: Path) -> None:
    async with node(tmp_path) as n:
        n.daemon.remote_profiles = (PROFILE,)
        async with tui(n, start=False, yes=False) as v:
            await v.until(lambda: v.app.node is not None, move_time=False)
            v.app.action_arm()
            await v.until(lambda: isinstance(v.app.screen, ConfirmScreen), move_time=False)
            await v.pilot.press("n")
            await v.until(lambda: any("not armed" in t for t in v.toasts()), move_time=False)
            assert n.daemon.armed_until() is None


async def test_the_home_screen_says_the_devices_are_the_daemons(tmp_path: Path) -> None:
    async with node(tmp_path) as n, tui(n, start=False, request=tui_request(roles={})) as v:
        await v.until(lambda: v.app.node is not None, move_time=False)
        await v.pilot.pause()
        devices = str(v.app.screen.query_one("#home-devices", Static).render())
        assert devices.startswith("Devices: the node daemon's (simulated devices (")
        assert "d: scan" not in devices
