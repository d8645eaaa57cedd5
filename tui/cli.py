"""``relieve tui [PROFILE]`` and ``relieve demo --tui``: the terminal UI from the command line.

What can be refused before the app starts (a bad ``--speed``, a profile that does not load)
is refused here, with one sentence and exit 1; the rest is said in the app. ``relieve tui``
runs its sessions through the node daemon when one runs on the data directory (the app looks
for it as it starts); ``relieve demo --tui`` never does (a throw-away history).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from controller.cli.run import DEMO_DEVICES, DEMO_PROFILE, DEMO_SPEED, session_request
from controller.ledger import Ledger
from controller.ledger.store import default_data_dir
from controller.library import ProfileLibrary
from controller.session.service import SessionRequest, SessionService, clock_for

if TYPE_CHECKING:
    from tui.app import RelieveApp

__all__ = ["demo", "tui"]


def tui(args: argparse.Namespace) -> int:
    """``relieve tui [PROFILE] ...``"""
    from tui.app import build_app

    profile: str | None = args.profile
    request = session_request(args, started_by="tui", profile=profile or "")
    clock_for(request)  # a bad --speed is refused before the app starts
    library = ProfileLibrary(args.config_dir)
    if profile is not None:
        library.resolve(profile)  # a profile that does not load: its problems, exit 1
    service = SessionService(library, config_dir=args.config_dir)
    data_dir = Path(args.data_dir) if args.data_dir is not None else default_data_dir()
    with Ledger.open(data_dir, simulated=request.simulated) as ledger:
        app = build_app(
            request,
            service=service,
            ledger=ledger,
            yes=bool(args.yes),
            start=profile is not None,
            data_dir=data_dir,
        )
        return _after(app, app.run())


def demo(args: argparse.Namespace) -> int:
    """``relieve demo --tui``: the lower-back routine on simulated devices, at x60, in the UI."""
    from tui.app import build_app

    speed = DEMO_SPEED if args.speed is None else args.speed
    request = SessionRequest(
        profile=DEMO_PROFILE, simulate=True, world=DEMO_DEVICES, speed=speed, started_by="tui"
    )
    clock_for(request)
    library = ProfileLibrary(args.config_dir)
    service = SessionService(library, config_dir=args.config_dir)
    with Ledger.open_temporary(simulated=True) as ledger:
        app = build_app(request, service=service, ledger=ledger, yes=True)
        return _after(app, app.run())


def _after(app: RelieveApp, code: int | None) -> int:
    """The app's screen is gone: say once more how the session ended (or why it did not)."""
    summary = app.summary()
    if summary:
        print(f"relieve: {summary}", file=sys.stderr)
    return app.exit_code() if code is None else code
