"""The README's picture of the terminal UI: a simulated contrast session at 80x24, as SVG.

Runs the built-in ``contrast-lower-back`` profile (pre-heat, then 3 x (5 min heat + 5 min
cold)) in the app, headless (``App.run_test``), on an in-process simulated world (the contrast
pad for heat and cold, the skin probe under it) in virtual time (``VirtualClock``: the picture
costs a few seconds, and the same screen comes out every time), with the precautions confirmed,
the health questions answered "no" in a temporary configuration directory (so the screen shows
the session, not the notice that they were never answered) and a throw-away ledger. At
``--at`` seconds into the first heat phase (default 20: the plate still climbing in its
sparkline, the "put the pad on" prompt showing) the screen is exported to
``docs/images/tui-session.svg``; then the session is stopped, every device OFF.

    python benchmarks/tui_screenshot.py                  # writes docs/images/tui-session.svg
    python benchmarks/tui_screenshot.py --at 290         # near the end of the heat phase
    python benchmarks/tui_screenshot.py --out /tmp/x.svg --json

It prints the path written and the screen as text (``--json``: one JSON object with both).
It lives beside the benchmarks, not in ``tui/``, because it builds a simulated world, and the
``tui`` package must not import bumble (``tests/test_import_boundaries.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from controller.health import save_answers
from controller.ledger import Ledger
from controller.library import ProfileLibrary
from controller.session.service import SessionRequest, SessionService
from drivers.core.clock import VirtualClock
from profiles.health import CONDITION_IDS
from tui.app import RelieveApp, build_app

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images" / "tui-session.svg"
PROFILE = "contrast-lower-back"
WORLD = ("contrast-pad", "skin-probe")  # simulators.catalog
ROLES = {"heat": "C0:DE:00:00:00:01", "cold": "C0:DE:00:00:00:01", "probe": "C0:DE:00:00:00:07"}
AT_S = 20.0  # seconds into the first heat phase
SIZE = (80, 24)
TITLE = "relieve"
THEME = "textual-dark"
STEP_S = 1.0  # clock seconds between looks at the app (telemetry comes once a clock second)
LOOKS = 2000  # at most this many looks before giving up
ANSWERED = datetime(2025, 1, 1, tzinfo=UTC)  # when the stand-in health answers were given
_ID = re.compile(r"\bterminal-\d+")
_TEXT = re.compile(r'<text [^>]*x="([\d.]+)"[^>]*line-(\d+)\)">([^<]*)</text>')


class ScreenshotError(Exception):
    """The session never got to the moment of the picture."""


async def _look(app: RelieveApp, clock: VirtualClock) -> None:
    """Let the app catch up; move the clock on while the session runs."""
    session = app.session
    if session is not None and session.running:
        await clock.advance(STEP_S)
    else:
        await asyncio.sleep(0.01)  # binding the devices: real time, no clock


def _there(app: RelieveApp, at_s: float) -> bool:
    screen = app.session_screen
    if screen is None:
        return False
    model = screen.model
    return model.phase is not None and model.phase.mode == "heat" and model.t >= at_s


async def screenshot(at_s: float) -> str:
    """The session screen ``at_s`` seconds into the first heat phase, as SVG."""
    clock = VirtualClock()
    with tempfile.TemporaryDirectory(prefix="relieve-screenshot-") as name:
        config = Path(name) / "config"
        save_answers(config, dict.fromkeys(CONDITION_IDS, False), now=lambda: ANSWERED)
        service = SessionService(ProfileLibrary(config), config_dir=config)
        request = SessionRequest(
            profile=PROFILE,
            roles=ROLES,
            simulate=True,
            world=WORLD,
            clock=clock,
            started_by="screenshot",
        )
        with Ledger.open_temporary(simulated=True) as ledger:
            app = build_app(request, service=service, ledger=ledger, yes=True)
            async with app.run_test(size=SIZE) as pilot:
                app.theme = THEME
                for _ in range(LOOKS):
                    if _there(app, at_s) or app.finished is not None or app.refused:
                        break
                    await _look(app, clock)
                if not _there(app, at_s):
                    why = app.refused or "it was not in its first heat phase"
                    raise ScreenshotError(f"the session never got {at_s:g} s in: {why}")
                screen = app.session_screen
                if screen is None:
                    raise ScreenshotError("the app has no session screen")
                await pilot.pause()
                screen.redraw()  # what telemetry's rate limit may still hold back
                await pilot.pause()
                svg = app.export_screenshot(title=TITLE)
                await pilot.press("s")
                for _ in range(LOOKS):
                    if app.finished is not None and app.session is None:
                        break
                    await _look(app, clock)
    # Rich names its classes after a hash of the content; one name keeps a new picture's diff
    # to what changed on the screen.
    return _ID.sub("terminal", svg)


def screen_text(svg: str) -> str:
    """The picture's text, each run of text at its column (one cell is 12.2 px in Rich's SVG)."""
    rows: dict[int, dict[int, str]] = {}
    for x, line, text in _TEXT.findall(svg):
        cells = rows.setdefault(int(line), {})
        for offset, char in enumerate(html.unescape(text).replace("\xa0", " ")):
            cells[round(float(x) / 12.2) + offset] = char
    return "\n".join(
        "".join(cells.get(c, " ") for c in range(max(cells, default=-1) + 1)).rstrip()
        for cells in (rows.get(n, {}) for n in range(max(rows, default=-1) + 1))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT, help=f"where (default {OUT})")
    parser.add_argument(
        "--at", type=float, default=AT_S, help=f"seconds into the heat phase (default {AT_S:g})"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not 0 <= args.at < 300:
        parser.error("--at must be within the 5-minute heat phase: 0 to 299 seconds")
    try:
        svg = asyncio.run(screenshot(args.at))
    except ScreenshotError as exc:
        sys.stderr.write(f"tui_screenshot: {exc}\n")
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(svg, encoding="utf-8", newline="")
    text = screen_text(svg)
    if args.json:
        sys.stdout.write(json.dumps({"path": str(args.out), "size": SIZE, "text": text}) + "\n")
    else:
        sys.stdout.write(f"{args.out}\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
