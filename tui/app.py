"""The relieve terminal UI: one App over the session service, or over the node daemon.

:func:`build_app` makes it (tests pass their own request, ledger and clock through the request).
Every way out -- ``q``, ``ctrl+c``, ``ctrl+q``, SIGTERM, SIGHUP, SIGINT -- stops a session
running in this process and waits until its ``run()`` returned (every device OFF) before the
app exits.

Given a data directory (``Launch.data_dir``) on which a node daemon (``relieve serve``) runs,
the app runs its sessions there instead (:class:`~controller.daemon.client.RemoteSession`, one
connection each), and opens on the daemon's session when one already runs. Such a session is
never stopped by the app merely going away: ``q`` (after asking), SIGTERM and SIGHUP leave it
running in the daemon; ``s``, ``e``, ``ctrl+c`` and SIGINT stop it there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import signal
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import Worker

from controller.daemon.client import (
    DaemonConnection,
    RemoteSession,
    arm_remote_start,
    connect,
    radio_conflict,
)
from controller.daemon.server import DaemonError
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

__all__ = [
    "BY",
    "DETACHED",
    "EXIT_ABORTED",
    "EXIT_OK",
    "LEAVE_RUNNING",
    "RADIO_OWNED",
    "Launch",
    "RelieveApp",
    "build_app",
    "one_sentence",
]

EXIT_OK = 0
EXIT_ABORTED = 1
BY = "relieve tui"  # who the node daemon records as pausing or stopping a session
LEAVE_RUNNING = (
    "Leave the session running in the node daemon and quit? (relieve attach shows it again; "
    "relieve stop stops it)"
)
DETACHED = (
    "The session goes on in the node daemon: relieve attach shows it again, relieve stop stops it."
)
RADIO_OWNED = (
    "The node daemon owns this node's radio; scan with it stopped, or assign roles by address "
    "with --heat/--cold/--gun/--probe."
)
# In the app ctrl+c is a key; a SIGINT still comes from ``kill -INT``: it stops the same way.
_SIGNALS = (
    (signal.SIGTERM, "terminated"),
    (signal.SIGHUP, "the terminal went away"),
    (signal.SIGINT, "interrupted"),
)


@dataclass(frozen=True)
class Launch:
    """How this app starts sessions: the service, the history, the request (its profile is
    replaced by the one chosen on the home screen) and whether ``--yes`` confirms.

    ``data_dir``: the node whose daemon (``relieve serve``), when one runs there as the app
    starts, runs the sessions; None: never look for one (every session in this process).
    """

    service: SessionService
    ledger: Ledger
    request: SessionRequest
    yes: bool = False
    data_dir: Path | None = None


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
        self.session: Session | RemoteSession | None = None
        self.session_screen: SessionScreen | None = None
        self.finished: Finished | None = None
        self.refused: str | None = None
        # the node daemon's node (from its status) when it runs this app's sessions
        self.node: dict[str, Any] | None = None
        self.blocked: str | None = None  # why no session can start here at all
        self.detached = False  # left a session running in the node daemon
        self._ended = asyncio.Event()
        self._ended.set()
        self._worker: Worker[None] | None = None
        self._cancelled_text = ""
        self._own_ledger: Ledger | None = None
        self._quitting = False
        self._stopping = False  # a stop of the running session was asked for
        self.handled_signals: list[signal.Signals] = []

    @property
    def busy(self) -> bool:
        """A session is being started, runs, or is ending."""
        return not self._ended.is_set()

    # --- start -------------------------------------------------------------------------------

    async def on_mount(self) -> None:
        self._install_signals()
        attach = await self._look_for_daemon()
        if self._quitting and attach is not None:
            await attach.close()  # a signal came meanwhile: the app is on its way out
        if self.blocked is not None or self._quitting:
            return
        if not self.start_at_once:
            self._push_home()
        if attach is not None:
            self._show_daemon_session(attach)
            if self.start_at_once:
                self.notify(
                    f"A session is already running on this node, so {self.launch.request.profile} "
                    "was not started; it is shown here.",
                    severity="warning",
                    timeout=8,
                    markup=False,
                )
        elif self.start_at_once:
            self.start_session(self.launch.request.profile)

    def _push_home(self) -> None:
        request = self.launch.request
        self.push_screen(
            HomeScreen(
                self.launch.service,
                self.launch.ledger,
                self.start_session,
                roles=lambda: self.launch.request.roles,
                daemon_radio=lambda: str(self.node.get("radio")) if self.node else None,
                extend=request.extend,
                lift=request.lift,
            )
        )

    async def _look_for_daemon(self) -> DaemonConnection | None:
        """Whether a node daemon runs the sessions (sets :attr:`node`); its connection when it
        runs one now (to follow it). A daemon that cannot be used blocks every start."""
        data_dir = self.launch.data_dir
        if data_dir is None:
            return None
        connection: DaemonConnection | None = None
        try:
            connection = await connect(data_dir)
            if connection is None:
                return None  # no daemon here: every session in this process, as ever
            status = await connection.request("status")
            node = status.get("node") or {}
            conflict = radio_conflict(self.launch.request, node)
            if conflict is not None:
                raise DaemonError(conflict)
            self._use_ledger_of(data_dir, simulated=bool(node.get("simulated")))
        except RelieveError as exc:
            if connection is not None:
                await connection.close()
            self.blocked = one_sentence(exc)
            self._refuse(self._new_session_screen(), self.blocked)
            return None
        self.node = dict(node)
        if status.get("session") is not None:
            return connection
        await connection.close()  # each session gets a connection of its own
        return None

    def _use_ledger_of(self, data_dir: Path, *, simulated: bool) -> None:
        """The home and history screens read the history of the daemon's kind of devices."""
        if self.launch.ledger.simulated == simulated:
            return
        self._own_ledger = Ledger.open(data_dir, simulated=simulated)
        self.launch = dataclasses.replace(self.launch, ledger=self._own_ledger)

    async def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self.handled_signals:
            loop.remove_signal_handler(sig)
        self.handled_signals.clear()
        if self._own_ledger is not None:
            self._own_ledger.close()
            self._own_ledger = None

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig, reason in _SIGNALS:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig, reason)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            self.handled_signals.append(sig)

    def _new_session_screen(self) -> SessionScreen:
        screen = SessionScreen(SessionModel())
        screen.stopper = functools.partial(self._stop_shown, screen)
        self.session_screen = screen
        self.push_screen(screen)
        self.finished, self.refused = None, None
        return screen

    def _person(self, screen: SessionScreen) -> TuiPerson:
        launch = self.launch
        return TuiPerson(
            self, yes=launch.yes, on_notice=screen.notice, health_config=launch.service.config_dir
        )

    def start_session(self, profile: str) -> None:
        """The session screen for ``profile``, and the session running in a worker (in this
        process, or in the node daemon)."""
        if self.session is not None or self.busy:
            return
        if self.blocked is not None:
            self.notify(self.blocked, severity="error", markup=False)
            return
        launch = self.launch
        request = dataclasses.replace(launch.request, profile=profile)
        screen = self._new_session_screen()
        person = self._person(screen)
        if self.node is not None:
            self._begin(self._run_remote(screen, person, request))
            return
        try:
            session = launch.service.session(request, person, launch.ledger)
        except RelieveError as exc:
            self._refuse(screen, one_sentence(exc))
            return
        self._follow(session, screen)
        self._begin(self._run(session, screen))

    def _show_daemon_session(self, connection: DaemonConnection) -> None:
        """The session the node daemon runs now, on the session screen."""
        screen = self._new_session_screen()
        self._begin(self._run_remote(screen, self._person(screen), None, connection))

    def _follow(self, session: Session | RemoteSession, screen: SessionScreen) -> None:
        model = screen.model

        def on_event(event: Event) -> None:
            model.apply(event)
            if isinstance(event, SessionStarted):
                model.plan = session.plan  # None from the daemon: it holds the plan
            screen.post_message(SessionScreen.Changed(urgent=not isinstance(event, Telemetry)))

        session.subscribe(on_event)
        self.session = screen.session = session

    def _begin(self, work: Coroutine[Any, Any, None]) -> None:
        self._ended.clear()
        self._stopping = False
        self._worker = self.run_worker(work, exclusive=True, exit_on_error=False)

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

    async def _run_remote(
        self,
        screen: SessionScreen,
        person: TuiPerson,
        request: SessionRequest | None,
        connection: DaemonConnection | None = None,
    ) -> None:
        """Start ``request`` in the node daemon (None: follow the session it runs) and show it
        until it finishes, this app leaves it (detach) or the connection is lost."""
        session: RemoteSession | None = None
        try:
            if connection is None:
                connection = await self._connect()
            session = await self._remote(connection, person, request)
            self._follow(session, screen)
            self.finished = await session.run()
        except RelieveError as exc:
            if session is not None and session.detached:
                screen.model.notice = DETACHED
            else:
                if session is not None and session.running:
                    screen.model.state = "disconnected"  # it goes on in the daemon, unseen
                self._refuse(screen, one_sentence(exc))
        except asyncio.CancelledError:
            if session is not None and session.running:
                self._refuse(screen, DETACHED)  # this app went away; the session did not
            elif not self.detached:
                self._refuse(screen, self._cancelled_text or "Left before the session began.")
            raise
        except Exception as exc:  # noqa: BLE001 - the daemon's session is not ours to end
            self._refuse(screen, f"relieve bug: {one_sentence(exc)}")
        finally:
            self.session = screen.session = None
            try:
                if connection is not None:
                    await connection.close()  # the session, if any, goes on in the daemon
            finally:
                self._ended.set()
                screen.post_message(SessionScreen.Changed(urgent=True))

    @staticmethod
    async def _remote(
        connection: DaemonConnection, person: TuiPerson, request: SessionRequest | None
    ) -> RemoteSession:
        """The daemon's session: a start of ``request`` when its radio options fit the node's
        (else the sentence why not), or, without a request, the session it runs now."""
        if request is not None:
            node = (await connection.request("status")).get("node") or {}
            conflict = radio_conflict(request, node)
            if conflict is not None:
                raise DaemonError(conflict)
        return RemoteSession(connection, request, person, attach_only=request is None, by=BY)

    async def _connect(self) -> DaemonConnection:
        data_dir = self.launch.data_dir
        connection = await connect(data_dir) if data_dir is not None else None
        if connection is None:
            raise DaemonError(
                f"The node daemon (relieve serve) no longer runs on {data_dir}, so nothing was "
                "started; quit and start relieve tui again to run sessions in it."
            )
        return connection

    def _refuse(self, screen: SessionScreen, sentence: str) -> None:
        self.refused = sentence
        screen.model.refusal = sentence
        screen.post_message(SessionScreen.Changed(urgent=True))

    # --- ways out ----------------------------------------------------------------------------

    def exit_code(self) -> int:
        finished = self.finished
        if self.detached and finished is None:
            return EXIT_OK  # the session goes on in the daemon
        if self.refused is not None:
            return EXIT_ABORTED
        if finished is not None and (finished.outcome == "aborted" or not finished.recorded):
            return EXIT_ABORTED
        return EXIT_OK

    def summary(self) -> str | None:
        """How the last session ended, or why it did not start (None: no session)."""
        if self.detached and self.finished is None:
            return DETACHED
        screen = self.session_screen
        return screen.model.summary() if screen is not None else None

    def _stop(self, reason: str, *, emergency: bool = False) -> None:
        """Stop the session; one the node daemon has not begun yet also stops being started
        here (a start already sent is stopped by the daemon: the stop follows it)."""
        self._stopping = self.busy
        session = self.session
        if session is not None:
            if emergency:
                session.emergency_stop()
            else:
                session.stop(reason)
        if self.node is None or not self.busy:
            return
        if isinstance(session, RemoteSession) and (session.running or session.attach_only):
            return  # the daemon ends it; its Finished ends the worker
        self._cancel_start("Stopped before the session began; nothing was started.")

    def _stop_shown(self, screen: SessionScreen, reason: str, emergency: bool) -> None:
        """``s`` or ``e`` on ``screen``: stop its session, if it is the one that runs."""
        if screen is self.session_screen and self.busy:
            self._stop(reason, emergency=emergency)

    def _cancel_start(self, text: str) -> None:
        worker = self._worker
        if worker is not None and self.busy:
            self._cancelled_text = text
            worker.cancel()

    def action_interrupt(self) -> None:
        """ctrl+c: stop the session; with none running, quit."""
        if self.busy:
            self._stop("stopped by you (Ctrl-C)")
        elif not self._quitting:
            self.exit(self.exit_code())

    async def action_quit(self) -> None:
        """q: quit; during a session, ask, then stop it first (or, in the node daemon, leave
        it running there)."""
        if self._quitting:
            return
        if not self.busy:
            self.exit(self.exit_code())
            return
        if self._stopping:  # already stopping (s, e): nothing to ask; quit once it has ended
            self.run_worker(self.stop_and_exit("stopped by you (quit)"), group="quit")
            return
        self.run_worker(self._ask_then_quit(), group="quit")

    async def _ask_then_quit(self) -> None:
        person = TuiPerson(self, yes=False)
        session = self.session
        if isinstance(session, RemoteSession) and session.running:
            if await person.ask(LEAVE_RUNNING):
                await self.detach_and_exit()
            return
        if await person.ask("Stop the session and quit? Every device is switched OFF first."):
            await self.stop_and_exit("stopped by you (quit)")

    async def stop_and_exit(self, reason: str) -> None:
        """Stop the session, wait until every device is OFF and let go of, then exit."""
        self._quitting = True
        if self.busy:
            self._stop(reason)
        await self._ended.wait()
        self.exit(self.exit_code())

    async def detach_and_exit(self) -> None:
        """Leave the node daemon's session running there, then exit (0). A session in this
        process is stopped instead, as ever."""
        if self.node is None:
            await self.stop_and_exit("stopped by you (quit)")
            return
        self._quitting = True
        session = self.session
        if isinstance(session, RemoteSession) and session.running:
            self.detached = True
            session.detach()
        elif self.busy:
            # not begun: the asking ends here; a start already sent goes on in the daemon
            self._cancel_start(
                "Left before the session began; relieve status shows whether it runs."
            )
        await self._ended.wait()
        self.exit(self.exit_code())

    def _on_signal(self, sig: signal.Signals, reason: str) -> None:
        if self.node is not None and sig in (signal.SIGTERM, signal.SIGHUP):
            # this app killed or its terminal gone: the daemon's session goes on
            self.run_worker(self.detach_and_exit(), group="quit")
        else:
            self.run_worker(self.stop_and_exit(reason), group="quit")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # --- the other screens and the command palette -------------------------------------------

    def action_devices(self) -> None:
        """The devices in range, and which plays which role in the next session; not while
        the node daemon owns the radio (roles by address still come from the command line)."""
        if self.node is not None or self.blocked is not None:
            self.notify(RADIO_OWNED, severity="warning", timeout=8, markup=False)
            return
        if self.busy:
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
        if self.busy:
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
        if self.node is not None:
            yield SystemCommand(
                "Arm remote start",
                "Confirm the precautions here: one MQTT start within 10 minutes",
                self.action_arm,
            )
        yield from super().get_system_commands(screen)

    def action_arm(self) -> None:
        """Arm remote start in the node daemon: the precautions confirmed here, in modals."""
        if self.node is None:
            self.notify("No node daemon runs here; remote start is armed in one.", markup=False)
            return
        self.run_worker(self._arm(), group="arm")

    async def _arm(self) -> None:
        person = TuiPerson(self, yes=False)
        armed, sentence = await arm_remote_start(self.launch.data_dir, person)
        if armed:
            self.notify(sentence, timeout=8, markup=False)
        else:
            self.notify(sentence, severity="warning", timeout=8, markup=False)


def build_app(
    request: SessionRequest,
    *,
    service: SessionService,
    ledger: Ledger,
    yes: bool = False,
    start: bool = True,
    data_dir: Path | None = None,
) -> RelieveApp:
    """The app; ``start``: straight to the session of ``request.profile``, else the home
    screen. ``request.clock`` (a VirtualClock in tests) runs the session's time. ``data_dir``:
    the node whose daemon, when one runs there, runs the sessions (None: never look for one)."""
    return RelieveApp(Launch(service, ledger, request, yes, data_dir), start=start)
