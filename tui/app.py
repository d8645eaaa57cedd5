"""The relieve terminal UI: one App over the session service.

:func:`build_app` makes it (tests pass their own request, ledger and clock through the request).
Every way out -- ``q``, ``ctrl+c``, ``ctrl+q``, SIGTERM, SIGHUP, SIGINT -- stops a running
session and waits until its ``run()`` returned (every device OFF) before the app exits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from controller.ledger import Ledger
from controller.session.events import Event, Finished, SessionStarted, Telemetry
from controller.session.service import Session, SessionRequest, SessionService
from profiles.errors import RelieveError
from tui.model import SessionModel
from tui.person import TuiPerson
from tui.screens.devices import DevicesScreen
from tui.screens.health import HealthScreen
from tui.screens.help import HelpScreen
from tui.screens.history import HistoryScreen
from tui.screens.home import HomeScreen
from tui.screens.session import SessionScreen

__all__ = ["EXIT_ABORTED", "EXIT_OK", "Launch", "RelieveApp", "build_app", "one_sentence"]

EXIT_OK = 0
EXIT_ABORTED = 1
# In the app ctrl+c is a key; a SIGINT still comes from ``kill -INT``: it stops the same way.
_SIGNALS = (
    (signal.SIGTERM, "terminated"),
    (signal.SIGHUP, "the terminal went away"),
    (signal.SIGINT, "interrupted"),
)


@dataclass(frozen=True)
class Launch:
    """How this app starts sessions: the service, the history, the request (its profile is
    replaced by the one chosen on the home screen) and whether ``--yes`` confirms."""

    service: SessionService
    ledger: Ledger
    request: SessionRequest
    yes: bool = False


def one_sentence(exc: BaseException) -> str:
    """A refusal as one line (a profile's problems are joined)."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


class RelieveApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "relieve"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "interrupt", "Stop", priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True, show=False),
        Binding("q", "quit", "Quit"),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
    ]

    def __init__(self, launch: Launch, *, start: bool) -> None:
        super().__init__()
        self.launch = launch
        self.start_at_once = start
        self.session: Session | None = None
        self.session_screen: SessionScreen | None = None
        self.finished: Finished | None = None
        self.refused: str | None = None
        self._ended = asyncio.Event()
        self._ended.set()
        self._quitting = False
        self.handled_signals: list[signal.Signals] = []

    # --- start -------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self._install_signals()
        if self.start_at_once:
            self.start_session(self.launch.request.profile)
        else:
            request = self.launch.request
            self.push_screen(
                HomeScreen(
                    self.launch.service,
                    self.launch.ledger,
                    self.start_session,
                    roles=lambda: self.launch.request.roles,
                    extend=request.extend,
                    lift=request.lift,
                )
            )

    def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self.handled_signals:
            loop.remove_signal_handler(sig)
        self.handled_signals.clear()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig, reason in _SIGNALS:
            try:
                loop.add_signal_handler(sig, self._on_signal, reason)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            self.handled_signals.append(sig)

    def start_session(self, profile: str) -> None:
        """The session screen for ``profile``, and the session running in a worker."""
        if self.session is not None:
            return
        launch = self.launch
        request = dataclasses.replace(launch.request, profile=profile)
        model = SessionModel()
        screen = SessionScreen(model)
        self.session_screen = screen
        self.push_screen(screen)
        self.finished, self.refused = None, None
        person = TuiPerson(
            self, yes=launch.yes, on_notice=screen.notice, health_config=launch.service.config_dir
        )
        try:
            session = launch.service.session(request, person, launch.ledger)
        except RelieveError as exc:
            self._refuse(screen, one_sentence(exc))
            return

        def on_event(event: Event) -> None:
            model.apply(event)
            if isinstance(event, SessionStarted):
                model.plan = session.plan
            screen.post_message(SessionScreen.Changed(urgent=not isinstance(event, Telemetry)))

        session.subscribe(on_event)
        self.session = screen.session = session
        self._ended.clear()
        self.run_worker(self._run(session, screen), exclusive=True, exit_on_error=False)

    async def _run(self, session: Session, screen: SessionScreen) -> None:
        try:
            self.finished = await session.run()
        except RelieveError as exc:
            self._refuse(screen, one_sentence(exc))
        except Exception as exc:  # noqa: BLE001 - the session already ended every output
            self._refuse(screen, f"relieve bug, the session ended: {one_sentence(exc)}")
        finally:
            self.session = screen.session = None
            self._ended.set()
            screen.post_message(SessionScreen.Changed(urgent=True))

    def _refuse(self, screen: SessionScreen, sentence: str) -> None:
        self.refused = sentence
        screen.model.refusal = sentence
        screen.post_message(SessionScreen.Changed(urgent=True))

    # --- ways out ----------------------------------------------------------------------------

    def exit_code(self) -> int:
        finished = self.finished
        if self.refused is not None:
            return EXIT_ABORTED
        if finished is not None and (finished.outcome == "aborted" or not finished.recorded):
            return EXIT_ABORTED
        return EXIT_OK

    def summary(self) -> str | None:
        """How the last session ended, or why it did not start (None: no session)."""
        screen = self.session_screen
        return screen.model.summary() if screen is not None else None

    def action_interrupt(self) -> None:
        """ctrl+c: stop the session; with none running, quit."""
        if self.session is not None:
            self.session.stop("stopped by you (Ctrl-C)")
        elif not self._quitting:
            self.exit(self.exit_code())

    async def action_quit(self) -> None:
        """q: quit; during a session, ask, then stop it first."""
        if self._quitting:
            return
        if self.session is None:
            self.exit(self.exit_code())
            return
        self.run_worker(self._ask_then_quit(), group="quit")

    async def _ask_then_quit(self) -> None:
        person = TuiPerson(self, yes=False)
        if await person.ask("Stop the session and quit? Every device is switched OFF first."):
            await self.stop_and_exit("stopped by you (quit)")

    async def stop_and_exit(self, reason: str) -> None:
        """Stop the session, wait until every device is OFF and let go of, then exit."""
        self._quitting = True
        session = self.session
        if session is not None:
            session.stop(reason)
        await self._ended.wait()
        self.exit(self.exit_code())

    def _on_signal(self, reason: str) -> None:
        self.run_worker(self.stop_and_exit(reason), group="quit")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # --- the other screens and the command palette -------------------------------------------

    def action_devices(self) -> None:
        """The devices in range, and which plays which role in the next session."""
        if self.session is not None:
            self.notify(
                "The devices can be scanned and assigned when no session runs; stop it first.",
                severity="warning",
            )
            return
        if not isinstance(self.screen, DevicesScreen):
            self.push_screen(DevicesScreen(self.launch.request, self._assign))

    def _assign(self, roles: Mapping[str, str]) -> None:
        launch = self.launch
        request = dataclasses.replace(launch.request, roles=dict(roles))
        self.launch = dataclasses.replace(launch, request=request)

    def action_history(self) -> None:
        if not isinstance(self.screen, HistoryScreen):
            self.push_screen(HistoryScreen(self.launch.ledger))

    def action_health(self) -> None:
        if not isinstance(self.screen, HealthScreen):
            self.push_screen(HealthScreen(self.launch.service.config_dir))

    def _start_from_palette(self, profile: str) -> None:
        if self.session is not None:
            self.notify(
                "A session is running; stop it before starting another.", severity="warning"
            )
            return
        self.start_session(profile)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """ctrl+p: start a profile, scan, history, health, help; then Textual's own."""
        for name, loaded in self.launch.service.library.all().items():
            yield SystemCommand(
                f"Start {loaded.profile.title} ({name})",
                "Run this profile: the precautions are asked first",
                functools.partial(self._start_from_palette, name),
            )
        yield SystemCommand("Scan devices", "What is in range; assign roles", self.action_devices)
        yield SystemCommand(
            "History", "Past sessions and today's totals; export", self.action_history
        )
        yield SystemCommand("Health questions", "Answer, review or change them", self.action_health)
        yield SystemCommand("Help", "Every key, and the safety notes", self.action_help)
        yield from super().get_system_commands(screen)


def build_app(
    request: SessionRequest,
    *,
    service: SessionService,
    ledger: Ledger,
    yes: bool = False,
    start: bool = True,
) -> RelieveApp:
    """The app; ``start``: straight to the session of ``request.profile``, else the home
    screen. ``request.clock`` (a VirtualClock in tests) runs the session's time."""
    return RelieveApp(Launch(service, ledger, request, yes), start=start)
