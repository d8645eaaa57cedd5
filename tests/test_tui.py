"""The terminal UI over the session service, driven with Textual's Pilot at 80x24.

Each test owns a simulated world on a virtual clock, served to the app's session through an
in-test ``HciServer`` (so the test sees what the simulated devices themselves report), and a
ledger in ``tmp_path``. Time moves only when the test moves it; the app's screen is read after
``pilot.pause()``.
"""

from __future__ import annotations

import html
import os
import re
import signal
import time
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.widgets import ListView, Static

from controller.cli.commands import main
from controller.cli.run import DEMO_DEVICES, DEMO_PROFILE, DEMO_SPEED
from controller.session.events import Telemetry
from controller.session.service import SessionError, SessionRequest, clock_for
from drivers.core.clock import VirtualClock
from simulators.faults import RefuseConnections, SensorDrift
from tests.session_harness import CONTRAST_MINI, MASSAGE_MINI, assert_off
from tests.tui_rig import (
    COLD_PAD,
    GUN,
    GUN_ROLE,
    PAD,
    PROBE,
    outcomes,
    output_off,
    rig,
)
from tui.app import Launch, RelieveApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.home import HomeScreen
from tui.screens.session import REDRAWS_PER_S, SessionScreen


async def test_a_contrast_session_shows_its_phases_and_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with rig(tmp_path) as r:
        bells: list[None] = []
        monkeypatch.setattr(r.app, "bell", lambda: bells.append(None))
        await r.phase("heat")
        assert "HEAT 42 °C" in r.text("#phase")
        assert "▶ HEAT 2:00" in r.text("#timeline")
        assert "SIMULATED" in r.text("#badge")
        assert "heat Heat Pad: linked" in r.text("#devices")
        assert "cold Cold Pad: linked" in r.text("#devices")
        assert r.text("#prompt").startswith(("NEXT in", "NOW:"))
        assert bells  # the prompt's heads-up rang the bell
        await r.phase("cold")
        assert "COLD 12 °C" in r.text("#phase")
        assert "✓ HEAT 2:00" in r.text("#timeline")
        assert "▶ COLD 2:00" in r.text("#timeline")
        await r.finished()
        assert "Session completed" in r.text("#summary")
        assert "Every device is OFF" in r.text("#summary")
        assert_off(r.world, PAD)
        assert_off(r.world, COLD_PAD)
        assert outcomes(tmp_path) == ["completed"]


async def test_space_pauses_with_the_pad_off_and_resumes(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.phase("heat")
        await r.until(lambda: r.world.pad(PAD).state.output_on)
        await r.pilot.press("space")
        await r.until(lambda: r.app.session is not None and r.app.session.paused, move_time=False)
        await r.until(lambda: output_off(r.world, PAD))  # the OFF reaches the pad
        assert_off(r.world, PAD)
        assert "PAUSED" in r.text("#title")
        phase = r.screen.model.phase
        await r.clock.advance(60)  # paused: the phase's clock is held, the pad stays OFF
        await r.pilot.pause()
        assert_off(r.world, PAD)
        assert r.screen.model.phase is phase
        await r.pilot.press("space")
        await r.until(lambda: r.screen.model.state == "running", move_time=False)
        await r.until(lambda: r.world.pad(PAD).state.output_on)
        await r.pilot.press("s")
        await r.finished()


async def test_s_stops_with_every_device_off_and_the_ledger_says_stopped(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.phase("heat")
        await r.until(lambda: r.world.pad(PAD).state.output_on)
        await r.pilot.press("s")
        await r.finished()
        assert r.app.finished is not None
        assert r.app.finished.outcome == "stopped"
        assert r.app.finished.devices_off
        assert_off(r.world, PAD)
        assert "Session stopped (stopped by you)" in r.text("#summary")
        assert outcomes(tmp_path) == ["stopped"]


async def test_ctrl_c_stops_the_session_then_quits(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.phase("heat")
        await r.pilot.press("ctrl+c")
        await r.finished()
        assert r.app.finished is not None
        assert r.app.finished.outcome == "stopped"
        assert r.app.is_running  # the first ctrl+c only stops the session
        assert_off(r.world, PAD)
        await r.pilot.press("ctrl+c")
        await r.pilot.pause()
        assert not r.app.is_running
    assert outcomes(tmp_path) == ["stopped"]


async def test_q_while_a_stop_is_under_way_asks_nothing_and_quits_once_it_ended(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as r:
        await r.phase("cold")
        await r.until(lambda: r.world.pad(COLD_PAD).state.output_on)
        await r.pilot.press("s")
        # a session ending in cold watches its pad for a reading after the OFF: still ending
        await r.pilot.pause()
        assert r.app.busy
        await r.pilot.press("q")
        await r.pilot.pause()
        assert not isinstance(r.app.screen, ConfirmScreen)  # the stop was asked for already
        await r.until(lambda: not r.app.is_running)
        assert r.app.finished is not None
        assert r.app.finished.outcome == "stopped"
        assert r.app.finished.devices_off
        assert_off(r.world, COLD_PAD)
    assert outcomes(tmp_path) == ["stopped"]


async def test_q_during_a_session_asks_then_stops_it_before_the_app_exits(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as r:
        await r.phase("heat")
        await r.until(lambda: r.world.pad(PAD).state.output_on)
        await r.pilot.press("q")
        await r.pilot.pause()
        assert isinstance(r.app.screen, ConfirmScreen)
        await r.pilot.press("n")  # no: the session goes on
        await r.pilot.pause()
        assert r.app.session is not None
        assert r.app.is_running
        await r.pilot.press("q")
        await r.pilot.pause()
        await r.pilot.press("y")
        await r.until(lambda: not r.app.is_running, move_time=False)
        assert r.app.finished is not None
        assert r.app.finished.outcome == "stopped"
        assert r.app.finished.devices_off
        assert_off(r.world, PAD)
        assert not r.world.pad(PAD).state.output_on
    assert outcomes(tmp_path) == ["stopped"]


async def test_a_skin_over_temperature_shows_the_banner_until_acknowledged(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as r:
        await r.phase("heat")
        r.world.inject(PROBE, SensorDrift(at=10, rate=30.0))
        await r.finished()
        assert r.app.finished is not None
        assert r.app.finished.outcome == "aborted"
        banner = r.text("#banner")
        assert banner.startswith("ALARM: ")
        assert "skin" in banner.lower()
        assert "Every output is OFF." in banner
        assert "Session aborted" in r.text("#summary")
        assert_off(r.world, PAD)
        await r.pilot.press("a")
        await r.pilot.pause()
        assert r.text("#banner") == ""
        assert r.app.exit_code() == 1
    assert outcomes(tmp_path) == ["aborted"]


async def test_a_plate_over_temperature_says_what_to_do_when_off_is_not_confirmed(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as r:
        await r.phase("heat")
        r.world.inject(PAD, SensorDrift(at=10, rate=30.0))
        await r.finished()
        assert r.app.finished is not None
        assert r.app.finished.outcome == "aborted"
        banner = r.text("#banner")
        assert "above its 42 °C setpoint" in banner
        assert "take the pad off now and unplug it" in banner
        summary = r.text("#summary")
        assert "NOT every device is confirmed OFF" in summary
        assert "unplug it" in summary
        assert not r.world.pad(PAD).state.output_on  # it took the OFF
    assert outcomes(tmp_path) == ["aborted"]


async def test_a_refused_profile_is_one_sentence_in_the_app(tmp_path: Path) -> None:
    too_hot = CONTRAST_MINI.replace("heat_celsius = 42", "heat_celsius = 60")
    async with rig(tmp_path, too_hot) as r:
        await r.until(lambda: r.app.refused is not None, move_time=False)
        await r.pilot.pause()
        summary = r.text("#summary")
        assert summary == r.app.refused
        assert "\n" not in summary.strip()
        assert "Traceback" not in summary
        assert r.app.session is None
        assert not r.world.pad(PAD).connected
    assert outcomes(tmp_path) == []


async def test_precautions_are_asked_in_a_modal_and_no_starts_nothing(tmp_path: Path) -> None:
    async with rig(tmp_path, yes=False) as r:
        await r.until(lambda: isinstance(r.app.screen, ConfirmScreen), move_time=False)
        await r.pilot.press("n")
        await r.until(lambda: r.app.refused is not None, move_time=False)
        assert "nothing was turned on" in (r.app.refused or "")
        assert not r.world.pad(PAD).state.output_on
    assert outcomes(tmp_path) == []


_TEXT = re.compile(
    r'<text class="[^"]*" x="([\d.]+)" y="[\d.]+" textLength="[\d.]+" '
    r'clip-path="url\(#terminal-\d+-line-(\d+)\)">([^<]*)</text>'
)
CELL_PX = 12.2  # the width of one terminal cell in Textual's SVG export


def _screen_lines(svg: str) -> list[str]:
    """The screen as text lines, each character at its column (random ids stripped)."""
    rows: dict[int, dict[int, str]] = {}
    for x, line, text in _TEXT.findall(svg):
        column = round(float(x) / CELL_PX)
        plain = html.unescape(text).replace("\xa0", " ").replace("\n", "")
        for offset, char in enumerate(plain):
            rows.setdefault(int(line), {})[column + offset] = char
    out = []
    for number in range(max(rows, default=-1) + 1):
        cells = rows.get(number, {})
        out.append("".join(cells.get(c, " ") for c in range(max(cells, default=-1) + 1)))
    return out


async def test_the_session_screen_fits_80x24_with_every_key(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.phase("heat")
        await r.clock.advance(20)
        await r.pilot.pause()
        lines = _screen_lines(r.app.export_screenshot())
        assert len(lines) <= 24
        assert all(len(line.rstrip()) <= 80 for line in lines)
        text = "\n".join(lines)
        assert "Contrast, one short cycle" in text
        assert "SIMULATED" in text
        for key, label in (
            ("space", "Pause/resume"),
            ("s", "Stop"),
            ("e", "E-stop"),
            ("a", "Ack alarm"),
            ("^c", "Stop"),
            ("q", "Quit"),
            ("?", "Help"),
        ):
            assert re.search(rf"{re.escape(key)}\s+{re.escape(label)}", text), (key, text)
        assert "…" not in text  # nothing cut off
        await r.pilot.press("s")
        await r.finished()


@pytest.mark.parametrize("key", ["question_mark", "f1"])
async def test_help_lists_every_key_and_the_safety_notes(tmp_path: Path, key: str) -> None:
    async with rig(tmp_path) as r:
        await r.phase("heat")
        await r.pilot.press(key)
        await r.pilot.pause()
        help_text = str(r.app.screen.query_one("#help-text", Static).render())
        for needle in ("space", "emergency stop", "ctrl+c", "not a medical device", "fabric"):
            assert needle in help_text
        # every key a footer shows is in the help
        shown = [
            b
            for cls in (RelieveApp, SessionScreen, HomeScreen)
            for b in cls.BINDINGS
            if isinstance(b, Binding) and b.show
        ]
        keys = {b.key_display or k for b in shown for k in b.key.split(",")}
        for name in keys - {"question_mark"}:
            # in a key column: two spaces (or the line's start) before, two or more after
            assert re.search(rf"(^|\s\s){re.escape(name)}\s\s", help_text, re.MULTILINE), name
        assert "thin towel" in help_text
        await r.pilot.press("escape")
        await r.pilot.press("s")
        await r.finished()


async def test_ctrl_c_while_the_precautions_are_asked_starts_nothing(tmp_path: Path) -> None:
    async with rig(tmp_path, yes=False) as r:
        await r.until(lambda: isinstance(r.app.screen, ConfirmScreen), move_time=False)
        await r.pilot.press("ctrl+c")
        await r.until(lambda: r.app.refused is not None, move_time=False)
        assert "Nothing was started" in (r.app.refused or "")
        assert not isinstance(r.app.screen, ConfirmScreen)
        assert r.app.is_running
        assert not r.world.pad(PAD).state.output_on
    assert outcomes(tmp_path) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
async def test_a_signal_stops_the_session_before_the_app_exits(
    tmp_path: Path, sig: signal.Signals
) -> None:
    async with rig(tmp_path) as r:
        await r.phase("heat")
        await r.until(lambda: r.world.pad(PAD).state.output_on)
        assert sig in r.app.handled_signals  # else the signal would end the test run
        os.kill(os.getpid(), sig)
        await r.until(lambda: not r.app.is_running, move_time=False)
        assert r.app.finished is not None
        assert r.app.finished.outcome == "stopped"
        assert r.app.finished.devices_off
        assert_off(r.world, PAD)
    assert r.app.handled_signals == []  # the handlers went with the app
    assert outcomes(tmp_path) == ["stopped"]


async def test_the_home_screen_starts_the_selected_profile(tmp_path: Path) -> None:
    async with rig(tmp_path, start=False) as r:
        await r.pilot.pause()
        assert r.app.session_screen is None
        profiles = r.app.screen.query_one(ListView)
        home = r.app.screen
        assert isinstance(home, HomeScreen)
        names = home.names
        assert "routine-lower-back" in names
        profiles.index = names.index("contrast-mini")
        await r.pilot.press("enter")
        await r.phase("heat")
        assert "Contrast, one short cycle" in r.text("#title")
        await r.pilot.press("s")
        await r.finished()
        await r.pilot.press("escape")  # back to the profiles
        await r.pilot.pause()
        assert r.app.screen.query_one(ListView) is not None
    assert outcomes(tmp_path) == ["stopped"]


async def test_telemetry_cannot_flood_the_session_screen(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.phase("heat")
        screen = r.screen
        before, began = screen.redraws, time.monotonic()
        for i in range(500):
            screen.model.apply(Telemetry(screen.model.t, "heat", plate_celsius=40 + i / 100))
            screen.post_message(SessionScreen.Changed(urgent=False))
        await r.pilot.pause()
        elapsed = time.monotonic() - began
        assert screen.redraws - before <= elapsed * REDRAWS_PER_S + 2
        await r.pilot.press("s")
        await r.finished()


def test_tui_refuses_a_bad_speed_before_the_app_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--data-dir", str(tmp_path), "tui", "heat-soak", "--simulate", "--speed", "5000"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("relieve: --speed must be between")
    assert err.count("\n") == 1


def test_tui_refuses_an_unknown_profile_before_the_app_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--config-dir", str(tmp_path), "tui", "no-such-profile", "--simulate"])
    assert code == 1
    err = capsys.readouterr().err
    assert "no-such-profile" in err
    assert "Traceback" not in err


def test_demo_tui_runs_the_demo_routine_in_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: list[tuple[Launch, bool]] = []

    def run(app: RelieveApp) -> int:
        launched.append((app.launch, app.start_at_once))
        return 0

    monkeypatch.setattr(RelieveApp, "run", run)
    assert main(["--config-dir", str(tmp_path), "demo", "--tui"]) == 0
    assert main(["--config-dir", str(tmp_path), "--data-dir", str(tmp_path), "tui"]) == 0
    (demo, demo_start), (home, home_start) = launched
    assert demo.request.profile == DEMO_PROFILE
    assert tuple(demo.request.world or ()) == DEMO_DEVICES
    assert demo.request.speed == DEMO_SPEED
    assert demo.request.simulate
    assert demo.yes
    assert demo_start
    assert not home_start  # no profile: the home screen
    assert not home.yes


async def test_the_gun_shows_its_speed_and_time_to_the_cap_and_e_stops_it(tmp_path: Path) -> None:
    async with rig(tmp_path, MASSAGE_MINI, roles=GUN_ROLE) as r:
        await r.phase("massage")
        await r.until(lambda: bool(r.screen.model.rpm) and r.screen.model.t > 0)
        # telemetry is drawn at most ten times a second (real time): let the screen catch up
        await r.until(lambda: "/min" in r.text("#gun"), move_time=False)
        gun = r.text("#gun")
        assert "/min" in gun
        assert "left to its cap" in gun
        assert r.world.gun(GUN).state.output_on
        await r.pilot.press("e")
        await r.finished()
        assert r.app.finished is not None
        assert (r.app.finished.outcome, r.app.finished.reason) == ("stopped", "emergency stop")
        assert not r.world.gun(GUN).state.output_on
    assert outcomes(tmp_path) == ["stopped"]


def test_a_clock_of_its_own_is_only_for_simulated_devices() -> None:
    clock = VirtualClock()
    assert clock_for(SessionRequest(profile="heat-soak", simulate=True, clock=clock)) is clock
    with pytest.raises(SessionError, match="simulated devices"):
        clock_for(SessionRequest(profile="heat-soak", clock=clock))


async def test_a_link_lost_past_its_grace_asks_to_resume_in_a_modal(tmp_path: Path) -> None:
    # the TUI is attended even with --yes (it confirms the precautions only): the person is asked
    async with rig(tmp_path) as r:
        await r.phase("heat")
        await r.until(lambda: r.world.pad(PAD).state.output_on)
        r.world.inject(PAD, RefuseConnections(at=1, duration=20, hide=True))
        await r.until(lambda: isinstance(r.app.screen, ConfirmScreen))
        question = r.app.screen
        assert isinstance(question, ConfirmScreen)
        assert "Resume when it is back?" in question.text
        assert_off(r.world, PAD)  # paused, every output OFF, while the person is asked
        await r.clock.advance(40)  # the pad advertises again and the link comes back
        await r.pilot.pause()
        assert not r.world.pad(PAD).state.output_on  # nothing resumes before the answer
        await r.pilot.press("y")
        await r.until(lambda: r.world.pad(PAD).state.output_on)  # the heat is back on
        assert r.app.session is not None
        assert r.app.session.running
        await r.pilot.press("s")
        await r.finished()
        assert_off(r.world, PAD)
    assert outcomes(tmp_path) == ["stopped"]


async def test_no_to_resume_ends_the_session_with_every_device_off(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.phase("heat")
        await r.until(lambda: r.world.pad(PAD).state.output_on)
        r.world.inject(PAD, RefuseConnections(at=1, duration=20, hide=True))
        await r.until(lambda: isinstance(r.app.screen, ConfirmScreen))
        await r.pilot.press("n")
        await r.finished()
        assert r.app.finished is not None
        assert r.app.finished.outcome == "stopped"
        assert "was lost for more than 10 s" in r.text("#summary")
        assert_off(r.world, PAD)
        assert_off(r.world, COLD_PAD)
