"""The terminal UI's test rig: the app on a simulated world of its own, at 80x24.

Each rig owns a simulated world on a virtual clock, served to the app's session through an
in-test ``HciServer`` (so the test sees what the simulated devices themselves report), and a
ledger in ``tmp_path``. Time moves only when the test moves it; the app's screen is read after
``pilot.pause()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static

from controller.ledger import Ledger
from controller.library import ProfileLibrary
from controller.session.service import SessionRequest, SessionService
from drivers.core.clock import VirtualClock
from simulators.hci_server import HciServer
from simulators.world import SimWorld
from tests.session_harness import CONTRAST_MINI
from tui.app import RelieveApp, build_app
from tui.screens.session import SessionScreen

# Separate heat and cold pads (one address may play one role), the probe under the heat pad.
PAD = "heat-pad"
COLD_PAD = "cold-pad"
PROBE = "skin-probe"
GUN = "massage-gun"
ADDRESSES = {"heat": "C0:DE:00:00:00:02", "cold": "C0:DE:00:00:00:03", "probe": "C0:DE:00:00:00:07"}
GUN_ROLE = {"gun": "C0:DE:00:00:00:04"}
STEP_S = 5.0  # clock seconds moved between looks at the app
LOOKS = 400  # at most this many looks for a condition


@dataclass
class Rig:
    app: RelieveApp
    pilot: Pilot[int]
    clock: VirtualClock
    world: SimWorld
    ledger: Ledger

    @property
    def screen(self) -> SessionScreen:
        screen = self.app.session_screen
        assert screen is not None
        return screen

    def text(self, selector: str) -> str:
        widget = self.screen.query_one(selector, Static)
        return str(widget.render()) if widget.display else ""

    async def until(self, condition: Callable[[], bool], *, move_time: bool = True) -> None:
        """Look at the app until ``condition`` holds; between looks the clock moves on while
        the session runs (binding, on the simulator's socket, needs none)."""
        for _ in range(LOOKS):
            if condition():
                await self.pilot.pause()  # the screen catches up
                return
            session = self.app.session
            if move_time and session is not None and session.running:
                await self.clock.advance(STEP_S)
            else:
                await self.pilot.pause()
        raise AssertionError("the app never got there")

    async def phase(self, mode: str) -> None:
        def current() -> bool:
            phase = self.screen.model.phase
            return phase is not None and phase.mode == mode

        await self.until(current)

    async def finished(self) -> None:
        await self.until(lambda: self.app.finished is not None and self.app.session is None)
        await self.pilot.pause()


@asynccontextmanager
async def rig(
    tmp_path: Path,
    profile_text: str = CONTRAST_MINI,
    *,
    yes: bool = True,
    start: bool = True,
    roles: dict[str, str] = ADDRESSES,
    lift: tuple[str, ...] = (),
) -> AsyncIterator[Rig]:
    """The app on a world of its own; ``start``: straight to the session of ``profile_text``
    (a file), else the home screen (the profile is also the user's own, ``contrast-mini``)."""
    clock = VirtualClock()
    profile = tmp_path / "profile.toml"
    profile.write_text(profile_text, encoding="utf-8")
    config = tmp_path / "config"
    (config / "profiles").mkdir(parents=True, exist_ok=True)
    (config / "profiles" / "contrast-mini.toml").write_text(profile_text, encoding="utf-8")
    world = SimWorld(clock=clock, devices=[PAD, COLD_PAD, PROBE, GUN])
    world.place_probe(PAD, PROBE)
    async with world, await HciServer.start(world.link, f"unix:{tmp_path / 'sim.sock'}") as hci:
        request = SessionRequest(
            profile=str(profile),
            roles=roles,
            simulator=hci.client_spec,
            clock=clock,
            lift=lift,
            started_by="test",
        )
        service = SessionService(ProfileLibrary(config), config_dir=config)
        with Ledger.open(tmp_path / "data", simulated=True) as ledger:
            app = build_app(request, service=service, ledger=ledger, yes=yes, start=start)
            async with app.run_test(size=(80, 24)) as pilot:
                try:
                    yield Rig(app, pilot, clock, world, ledger)
                finally:
                    # a test that failed mid-session: stop it (every device OFF) before its
                    # simulator goes away, so the failure is the test's, not the teardown's
                    session = app.session
                    if session is not None:
                        session.stop("the test ended")
                        for _ in range(LOOKS):
                            if app.session is None:
                                break
                            await clock.advance(1)
                            await pilot.pause()


def output_off(world: SimWorld, key: str) -> bool:
    state = world.device(key).state
    return not state.output_on and not (state.plate_c is not None and state.energised)


def outcomes(tmp_path: Path) -> list[str | None]:
    """What the ledger recorded (read from the file, as another process would)."""
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        return [s.outcome for s in ledger.sessions()]
