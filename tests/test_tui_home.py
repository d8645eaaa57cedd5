"""The home screen: each profile with whether it may start now (the rule and the time when not),
and today's minutes by area; the same checks as the session service makes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Label, ListView, Static

from controller.health import load_answers
from controller.ledger import Ledger
from controller.library import ProfileLibrary
from controller.session.service import SessionRequest, SessionService
from drivers.core.clock import VirtualClock
from profiles.errors import RelieveError
from profiles.health import CONDITIONS
from tests.session_harness import CONTRAST_MINI, assert_off
from tests.test_session_service import Person
from tests.test_tui import _screen_lines
from tests.tui_rig import PAD, Rig, outcomes, rig
from tui.app import RelieveApp, build_app
from tui.screens.confirm import ConfirmScreen
from tui.screens.devices import DevicesScreen
from tui.screens.health import HealthScreen
from tui.screens.history import HistoryScreen
from tui.screens.home import HomeScreen


def _home(r: Rig) -> HomeScreen:
    home = r.app.screen
    assert isinstance(home, HomeScreen)
    return home


async def _checked(r: Rig, after: int = 0) -> HomeScreen:
    """The home screen once its checks (on a thread) ran more than ``after`` times."""
    await r.until(
        lambda: isinstance(r.app.screen, HomeScreen) and r.app.screen.refreshes > after,
        move_time=False,
    )
    return _home(r)


def _row(home: HomeScreen, name: str) -> str:
    return str(home.query_one(f"#row-{home.names.index(name)}", Label).render())


def _static(home: HomeScreen, selector: str) -> str:
    return str(home.query_one(selector, Static).render())


async def test_a_profile_refused_by_an_allowance_shows_its_rule_and_time(tmp_path: Path) -> None:
    async with rig(tmp_path, start=False) as r:
        home = await _checked(r)
        assert "✓ allowed now" in _row(home, "contrast-mini")
        assert _static(home, "#home-today") == "Today: no heat, cold or massage yet."
        home.query_one(ListView).index = home.names.index("contrast-mini")
        await r.pilot.press("enter")
        await r.phase("heat")
        await r.until(lambda: r.world.pad(PAD).state.output_on)
        await r.clock.advance(60)  # a minute of heat delivered
        await r.pilot.press("s")
        await r.finished()
        seen = home.refreshes
        await r.pilot.press("escape")  # back home: the checks run again
        home = await _checked(r, seen)

        # the session just run started less than 2 hours ago: H5 refuses another heat session
        row = _row(home, "contrast-mini")
        assert row.startswith("✗ H5: from ")
        assert "Contrast, one short cycle (contrast-mini, yours)" in row
        home.query_one(ListView).index = home.names.index("contrast-mini")
        await r.pilot.pause()
        detail = _static(home, "#home-detail")
        assert "(H5)" in detail
        assert "at least 2 hours apart" in detail
        # today's minutes by area (the mini profile treats the lower back)
        today = _static(home, "#home-today")
        assert today.startswith("Today: lower-back heat ")

        # Enter on a refused profile says why and starts nothing
        before = r.app.session_screen
        await r.pilot.press("enter")
        await r.pilot.pause()
        assert r.app.session is None
        assert r.app.session_screen is before
        assert isinstance(r.app.screen, HomeScreen)
        assert_off(r.world, PAD)
    assert outcomes(tmp_path) == ["stopped"]


async def test_a_damaged_health_file_is_one_sentence_on_the_home_screen(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "health.json").write_text("{not json", encoding="utf-8")
    async with rig(tmp_path, start=False) as r:
        home = await _checked(r)
        assert "not now: see below" in _row(home, "contrast-mini")
        home.query_one(ListView).index = home.names.index("contrast-mini")
        await r.pilot.pause()
        detail = _static(home, "#home-detail")
        assert "health" in detail.lower()
        assert "\n" not in detail.strip()


def _service(tmp_path: Path) -> tuple[SessionService, Path]:
    config = tmp_path / "config"
    (config / "profiles").mkdir(parents=True)
    (config / "profiles" / "contrast-mini.toml").write_text(CONTRAST_MINI, encoding="utf-8")
    return SessionService(ProfileLibrary(config), config_dir=config), config


async def test_availability_says_what_the_session_would_refuse(tmp_path: Path) -> None:
    service, _ = _service(tmp_path)
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        assert service.availability("contrast-mini", ledger).allowed
        # an injury on the lower back an hour ago: cold only there (H6)
        ledger.add_injury("lower-back", ledger.now() - timedelta(hours=1))
        found = service.availability("contrast-mini", ledger)
        assert not found.allowed
        assert {r.rule_id for r in found.refusals} == {"H6"}
        request = SessionRequest(
            "contrast-mini", simulate=True, clock=VirtualClock(), started_by="test"
        )
        with pytest.raises(RelieveError) as refused:
            await service.session(request, Person(), ledger).run()
        assert str(refused.value) == found.sentence
        # an override lifts it, and says so
        lifted = service.availability("contrast-mini", ledger, lift=("H6",))
        assert lifted.allowed
        assert lifted.lifted == ("H6",)


def test_availability_of_a_profile_that_does_not_load_is_one_sentence(tmp_path: Path) -> None:
    service, _ = _service(tmp_path)
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        found = service.availability("no-such-profile", ledger)
    assert not found.allowed
    assert found.problem is not None
    assert "no-such-profile" in found.problem


async def test_an_override_shows_on_the_home_screen_and_is_recorded(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        ledger.add_injury("lower-back", ledger.now() - timedelta(hours=1))
    async with rig(tmp_path, start=False, lift=("H6",)) as r:
        home = await _checked(r)
        assert "✓ allowed (H6 overridden)" in _row(home, "contrast-mini")
        home.query_one(ListView).index = home.names.index("contrast-mini")
        await r.pilot.press("enter")
        await r.phase("heat")
        await r.pilot.press("s")
        await r.finished()
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        assert [s.overrides for s in ledger.sessions()] == [("H6",)]


async def test_without_the_override_the_injury_refuses_heat_on_the_home_screen(
    tmp_path: Path,
) -> None:
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        ledger.add_injury("lower-back", ledger.now() - timedelta(hours=1))
    async with rig(tmp_path, start=False) as r:
        home = await _checked(r)
        row = _row(home, "contrast-mini")
        assert row.startswith("✗ H6: from ")
        # cold alone stays allowed for an acute injury
        assert "✓ allowed now" in _row(home, "cold-pack-acute")


async def test_the_home_screen_fits_80x24_with_its_keys(tmp_path: Path) -> None:
    async with rig(tmp_path, start=False) as r:
        await _checked(r)
        lines = _screen_lines(r.app.export_screenshot())
        assert len(lines) <= 24
        assert all(len(line.rstrip()) <= 80 for line in lines)
        text = "\n".join(lines)
        assert "relieve on simulated devices: choose a profile and press Enter" in text
        for key, label in (
            ("d", "Devices"),
            ("h", "History"),
            ("a", "Health"),
            ("q", "Quit"),
            ("?", "Help"),
            ("^p", "palette"),
        ):
            assert re.search(rf"{re.escape(key)}\s+{re.escape(label)}", text), (key, text)


# --- the other screens, from the home screen and the command palette ----------------------------


@pytest.mark.parametrize(
    ("key", "screen"), [("d", DevicesScreen), ("h", HistoryScreen), ("a", HealthScreen)]
)
async def test_home_keys_open_the_other_screens_and_escape_comes_back(
    tmp_path: Path, key: str, screen: type[Screen[None]]
) -> None:
    async with rig(tmp_path, start=False) as r:
        await _checked(r)
        await r.pilot.press(key)
        await r.until(lambda: isinstance(r.app.screen, screen), move_time=False)
        if isinstance(r.app.screen, DevicesScreen):  # let its scan finish on the virtual clock
            devices = r.app.screen
            await r.clock.advance(10)
            await r.until(lambda: not devices.scanning, move_time=False)
        await r.pilot.press("escape")
        await r.until(lambda: isinstance(r.app.screen, HomeScreen), move_time=False)


@pytest.mark.parametrize(
    ("query", "screen"),
    [("scan devices", DevicesScreen), ("history", HistoryScreen), ("health q", HealthScreen)],
)
async def test_the_command_palette_opens_the_other_screens(
    tmp_path: Path, query: str, screen: type[Screen[None]]
) -> None:
    async with rig(tmp_path, start=False) as r:
        await _checked(r)
        await r.pilot.press("ctrl+p")
        await r.until(lambda: isinstance(r.app.screen, CommandPalette), move_time=False)
        await r.pilot.press(*query)
        await r.pilot.pause(0.3)  # the palette searches in the background
        await r.pilot.press("enter")
        await r.until(lambda: isinstance(r.app.screen, screen), move_time=False)


async def test_the_command_palette_starts_a_profile(tmp_path: Path) -> None:
    async with rig(tmp_path, start=False) as r:
        await _checked(r)
        await r.pilot.press("ctrl+p")
        await r.until(lambda: isinstance(r.app.screen, CommandPalette), move_time=False)
        await r.pilot.press(*"one short")
        await r.pilot.pause(0.3)
        await r.pilot.press("enter")
        await r.phase("heat")
        assert "Contrast, one short cycle" in r.text("#title")
        # a second start while it runs is refused; the running session goes on
        await r.pilot.press("ctrl+p")
        await r.until(lambda: isinstance(r.app.screen, CommandPalette), move_time=False)
        session = r.app.session
        await r.pilot.press(*"heat soak")
        await r.pilot.pause(0.3)
        await r.pilot.press("enter")
        await r.pilot.pause()
        assert r.app.session is session
        await r.pilot.press("s")
        await r.finished()
    assert outcomes(tmp_path) == ["stopped"]


async def test_roles_chosen_on_the_devices_screen_are_used_by_the_next_session(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, start=False, roles={}) as r:
        home = await _checked(r)
        assert "found by kind" in _static(home, "#home-devices")
        await r.pilot.press("d")
        await r.until(lambda: isinstance(r.app.screen, DevicesScreen), move_time=False)
        devices = r.app.screen
        assert isinstance(devices, DevicesScreen)
        await r.clock.advance(10)
        await r.until(lambda: not devices.scanning, move_time=False)
        await r.pilot.press("m", "c")  # the cold role: a passive pack
        await r.pilot.press("enter")
        await r.until(lambda: isinstance(r.app.screen, HomeScreen), move_time=False)
        assert "cold manual" in _static(home, "#home-devices")
        home.query_one(ListView).index = home.names.index("contrast-mini")
        await r.pilot.press("enter")
        await r.phase("cold")  # the cold phase runs on the manual pack: the cold pad stays off
        assert "cold: manual" in r.text("#devices")
        assert not r.world.device("cold-pad").connected
        await r.pilot.press("s")
        await r.finished()


# --- the health questions, when a session on real devices needs them ----------------------------


@asynccontextmanager
async def _real_devices_app(tmp_path: Path) -> AsyncIterator[tuple[RelieveApp, Pilot[int], Path]]:
    """The app straight to a session on real devices (nothing simulated), the health questions
    never answered in its config directory."""
    service, config = _service(tmp_path)
    request = SessionRequest("contrast-mini", roles={"heat": "manual", "cold": "manual"})
    with Ledger.open(tmp_path / "data") as ledger:
        app = build_app(request, service=service, ledger=ledger, yes=False)
        async with app.run_test(size=(80, 24)) as pilot:
            yield app, pilot, config


async def _until_screen(pilot: Pilot[int], app: RelieveApp, kind: type[object]) -> None:
    for _ in range(200):
        if isinstance(app.screen, kind):
            return
        await pilot.pause()
    raise AssertionError(f"no {kind.__name__}")


async def test_a_session_on_real_devices_asks_the_health_questions_on_the_health_screen(
    tmp_path: Path,
) -> None:
    async with _real_devices_app(tmp_path) as (app, pilot, config):
        await _until_screen(pilot, app, HealthScreen)
        assert "needs every question answered" in str(
            app.screen.query_one("#health-title", Static).render()
        )
        await pilot.press(*["n"] * len(CONDITIONS), "ctrl+s", "escape")
        # answered and saved: the session goes on to the precautions (say no: nothing starts)
        await _until_screen(pilot, app, ConfirmScreen)
        assert load_answers(config).answered
        await pilot.press("n")
        for _ in range(200):
            if app.refused is not None:
                break
            await pilot.pause()
        assert app.refused == "Not confirmed, so nothing was turned on."


async def test_health_questions_left_unanswered_refuse_the_session_in_one_sentence(
    tmp_path: Path,
) -> None:
    async with _real_devices_app(tmp_path) as (app, pilot, config):
        await _until_screen(pilot, app, HealthScreen)
        await pilot.press("y", "escape", "y")  # one answer, then leave it unsaved (discard: y)
        for _ in range(200):
            if app.refused is not None:
                break
            await pilot.pause()
        assert app.refused is not None
        assert app.refused.startswith("Answer the health questions once")
        assert not load_answers(config).answered
    with Ledger.open(tmp_path / "data") as ledger:
        assert ledger.sessions() == []  # nothing was recorded: nothing started
