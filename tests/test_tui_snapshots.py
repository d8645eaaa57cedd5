"""Snapshot tests of the terminal UI: four screens at 80x24 against golden SVG files.

Regenerate every golden after a deliberate change to what a screen shows (new footer keys, a
new line on the session screen), then look at the new files (any browser shows an SVG):

    RELIEVE_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest -q tests/test_tui_snapshots.py

The goldens are ``tests/snapshots/<name>.svg``: the session mid-session (a contrast session in
its heat phase, a prompt showing), the finish summary, the high-alarm banner (an injected skin
over-temperature) and the help screen. On a mismatch a test fails naming its golden, writes
this run's export beside it as ``tests/snapshots/<name>.actual.svg`` (git-ignored) and lists
the lines of screen text that differ (read back from both SVGs); when the text is the same,
only colours or styles changed: open both files to see which.

What would vary between runs, and how it is pinned here:

* time: the session runs on the rig's ``VirtualClock``, and every picture is taken at a fixed
  clock time. The rig sees a phase only at its 5-second steps (and, on a busy machine, not
  always at the same one), so nothing may be measured from "when the rig saw the heat phase":
  the fault is injected and the picture taken at absolute clock times, checked to be ahead;
* redraws: telemetry redraws the screen at most ten times a second of real time, so the last
  telemetry may wait on a timer; the screen is redrawn from its model right before each export;
* Rich's SVG names its CSS classes and clip paths ``terminal-<adler32 of the content>``: the
  same for the same screen, but a one-character change renames every class. It is normalised
  to ``terminal`` so that a regenerated golden's diff shows only what changed;
* the window title (``title=``), the theme (``textual-dark``, whatever ``TEXTUAL_THEME`` says)
  and ``NO_COLOR`` (removed) are pinned; the other display variables Textual reads when it is
  imported (``TEXTUAL_FILTERS``, ``TEXTUAL_DIM_FACTOR``) must be unset, else the tests say so;
* no cursor blinks: these screens have no text input, and the export draws no cursor.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from xml.etree import ElementTree

import pytest
import textual.constants

from simulators.faults import SensorDrift
from tests.tui_rig import PROBE, Rig, rig
from tui.screens.help import HelpScreen

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_VARIABLE = "RELIEVE_UPDATE_SNAPSHOTS"
REGENERATE = f"{UPDATE_VARIABLE}=1 .venv/bin/python -m pytest -q tests/test_tui_snapshots.py"
TITLE = "relieve"
THEME = "textual-dark"
SIZE = (80, 24)
# Clock times of the rig's VirtualClock (the contrast profile pre-heats for 45 s of it, then
# the heat phase runs 120 s): the session 20 s into its heat phase, and the skin fault's start.
SESSION_AT = 65.0
FAULT_AT = 55.0
CELL_PX = 12.2  # one terminal cell in Rich's SVG: 0.61 x its 20 px font
_ID = re.compile(r"\bterminal-\d+")
_LINE = re.compile(r"-line-(\d+)\)")
_SVG_TEXT = "{http://www.w3.org/2000/svg}text"


# --- the comparison ----------------------------------------------------------------------------


def normalised(svg: str) -> str:
    """``svg`` with Rich's content hash taken out of its ids (see the module's docstring)."""
    return _ID.sub("terminal", svg)


def screen_text(svg: str) -> list[str]:
    """The screen an SVG export shows, as lines of text (trailing spaces dropped)."""
    rows: dict[int, dict[int, str]] = {}
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own export, or our golden file
    for element in root.iter(_SVG_TEXT):
        line = _LINE.search(element.get("clip-path", ""))
        if line is None:
            continue  # the window's title
        column = round(float(element.get("x", "0")) / CELL_PX)
        cells = rows.setdefault(int(line.group(1)), {})
        for offset, char in enumerate((element.text or "").replace("\xa0", " ")):
            cells[column + offset] = char
    lines = []
    for number in range(max(rows, default=-1) + 1):
        cells = rows.get(number, {})
        lines.append("".join(cells.get(c, " ") for c in range(max(cells, default=-1) + 1)))
    return [line.rstrip() for line in lines]


def assert_snapshot(name: str, svg: str) -> None:
    """The export ``svg`` is the golden ``tests/snapshots/<name>.svg`` (or, with the update
    variable set, becomes it)."""
    now = normalised(svg)
    golden = SNAPSHOTS / f"{name}.svg"
    actual = SNAPSHOTS / f"{name}.actual.svg"
    if os.environ.get(UPDATE_VARIABLE) == "1":
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        golden.write_text(now, encoding="utf-8", newline="")
        actual.unlink(missing_ok=True)
        return
    if not golden.is_file():
        actual.write_text(now, encoding="utf-8", newline="")
        pytest.fail(
            f"no golden {_shown(golden)}; this run's export is {_shown(actual)}. "
            f"To make the goldens: {REGENERATE}",
            pytrace=False,
        )
    expected = golden.read_text(encoding="utf-8")
    if now == expected:
        actual.unlink(missing_ok=True)
        return
    actual.write_text(now, encoding="utf-8", newline="")
    diff = difflib.unified_diff(
        screen_text(expected), screen_text(now), "golden", "this run", lineterm="", n=0
    )
    changed = "\n".join(diff) or "(the screen text is the same: colours or styles differ)"
    pytest.fail(
        f"the screen differs from {_shown(golden)}; this run's export is {_shown(actual)}.\n"
        f"{changed}\nIf the change is meant, regenerate: {REGENERATE}",
        pytrace=False,
    )


def _shown(path: Path) -> str:
    return str(path.relative_to(SNAPSHOTS.parent.parent))


# --- the app at a fixed moment -----------------------------------------------------------------


@asynccontextmanager
async def pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    """The rig's app (a contrast session on its own world), with what the picture depends on
    besides the session pinned."""
    if textual.constants.FILTERS.strip() or textual.constants.DIM_FACTOR != 0.66:
        pytest.fail("unset TEXTUAL_FILTERS and TEXTUAL_DIM_FACTOR for the snapshot tests")
    monkeypatch.delenv("NO_COLOR", raising=False)  # read when the app is made
    async with rig(tmp_path) as r:
        r.app.theme = THEME
        yield r


async def at_clock(r: Rig, clock_s: float) -> None:
    """Move the session's clock to ``clock_s`` exactly (it must not be past it yet)."""
    assert r.clock.now() <= clock_s, (
        f"the clock is at {r.clock.now():g} s, past {clock_s:g} s: the session reached this "
        "point later than these snapshots assume; move SESSION_AT / FAULT_AT"
    )
    await r.clock.advance_to(clock_s)
    await r.pilot.pause()


async def export(r: Rig) -> str:
    """The screen as an SVG, drawn from everything the session said so far."""
    r.screen.redraw()
    await r.pilot.pause()
    await r.pilot.wait_for_scheduled_animations()
    assert r.app.size == SIZE
    return r.app.export_screenshot(title=TITLE)


async def stop(r: Rig) -> None:
    await r.pilot.press("s")
    await r.finished()


# --- the snapshots -----------------------------------------------------------------------------


async def test_session_screen_in_the_heat_phase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with pinned(tmp_path, monkeypatch) as r:
        await r.phase("heat")
        await at_clock(r, SESSION_AT)
        model = r.screen.model
        assert model.phase is not None
        assert model.phase.mode == "heat"
        assert model.prompt_line(model.t)  # a prompt shows
        svg = await export(r)
        await stop(r)  # before comparing: a failing test still ends with every device OFF
    assert_snapshot("session-heat", svg)


async def test_finish_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with pinned(tmp_path, monkeypatch) as r:
        await r.finished()
        assert r.app.finished is not None
        assert r.app.finished.outcome == "completed"
        svg = await export(r)
    assert_snapshot("finished", svg)


async def test_high_alarm_banner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with pinned(tmp_path, monkeypatch) as r:
        await r.phase("heat")
        await at_clock(r, FAULT_AT)
        r.world.inject(PROBE, SensorDrift(at=10, rate=30.0))
        await r.finished()
        assert r.app.finished is not None
        assert r.app.finished.outcome == "aborted"
        assert r.text("#banner").startswith("ALARM: ")
        svg = await export(r)
    assert_snapshot("alarm", svg)


async def test_help_screen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with pinned(tmp_path, monkeypatch) as r:
        await r.phase("heat")
        await at_clock(r, SESSION_AT)
        await r.pilot.press("question_mark")
        await r.pilot.pause()
        assert isinstance(r.app.screen, HelpScreen)
        svg = await export(r)
        await r.pilot.press("escape")
        await stop(r)
    assert_snapshot("help", svg)


# --- the comparison itself ---------------------------------------------------------------------


def test_screen_text_reads_an_export_back() -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg">'
        '<text class="terminal-1-title" x="496" y="27">relieve</text>'
        '<text class="terminal-1-r1" x="0" y="20" clip-path="url(#terminal-1-line-0)">'
        "a&#160;&lt;b&gt;</text>"
        '<text class="terminal-1-r1" x="61" y="20" clip-path="url(#terminal-1-line-0)">'
        "c</text>"
        '<text class="terminal-1-r1" x="12.2" y="68.8" clip-path="url(#terminal-1-line-2)">'
        "°C&#160;</text>"
        "</svg>"
    )
    assert screen_text(svg) == ["a <b>c", "", " °C"]
    assert normalised(svg).count("terminal-1") == 0
    assert 'class="terminal-r1"' in normalised(svg)


def test_a_mismatch_names_the_golden_and_the_lines_that_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(UPDATE_VARIABLE, raising=False)
    monkeypatch.setattr(f"{__name__}.SNAPSHOTS", tmp_path / "tests" / "snapshots")

    def export_of(text: str) -> str:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg"><text class="terminal-7-r1" x="0" y="20" '
            f'clip-path="url(#terminal-7-line-0)">{text}</text></svg>'
        )

    monkeypatch.setenv(UPDATE_VARIABLE, "1")
    assert_snapshot("screen", export_of("RUNNING"))
    monkeypatch.delenv(UPDATE_VARIABLE)
    assert_snapshot("screen", export_of("RUNNING"))  # the same: passes
    with pytest.raises(pytest.fail.Exception) as failed:
        assert_snapshot("screen", export_of("PAUSED"))
    message = str(failed.value)
    assert "tests/snapshots/screen.svg" in message
    assert "tests/snapshots/screen.actual.svg" in message
    assert "-RUNNING" in message
    assert "+PAUSED" in message
    assert REGENERATE in message
    assert "PAUSED" in (tmp_path / "tests" / "snapshots" / "screen.actual.svg").read_text()
