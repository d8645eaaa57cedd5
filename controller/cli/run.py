"""``relieve run PROFILE`` and ``relieve demo``: the command-line front end of a session.

Everything a session enforces happens in :mod:`controller.session.service`; this module turns
arguments into a :class:`~controller.session.service.SessionRequest`, asks the person at the
terminal (or takes ``--yes``), shows the events (the live view or ``--json`` lines), maps
Ctrl-C, SIGTERM and the line commands to the session's controls, and turns the outcome into an
exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from controller.cli.console import JsonLines, LiveView
from controller.cli.health import ask_questions
from controller.cli.keys import SessionKeys
from controller.ledger import Ledger
from controller.ledger.store import default_data_dir
from controller.library import ProfileLibrary
from controller.session.events import Event, Finished
from controller.session.service import (
    ROLES,
    AskResume,
    Session,
    SessionRequest,
    SessionService,
    clock_for,
)
from profiles.errors import RelieveError

if TYPE_CHECKING:
    from controller.daemon.client import DaemonConnection

__all__ = ["DEMO_PROFILE", "DEMO_SPEED", "demo", "run"]

_T = TypeVar("_T")

DEMO_PROFILE = "routine-lower-back"
DEMO_SPEED = 60.0  # the demo's 50-minute routine in under a minute
DEMO_DEVICES = ("contrast-pad", "massage-gun", "skin-probe")  # the demo's simulated world

EXIT_OK = 0
EXIT_ABORTED = 1


class RunError(RelieveError):
    """A session could not start from the command line."""


@dataclass
class Terminal:
    """The person at the terminal, as the session service asks them (see ``Person``)."""

    yes: bool
    interactive: bool
    keys: SessionKeys | None = None

    async def confirm(self, text: str) -> bool:
        if self.yes:
            return True
        if not self.interactive:
            raise RunError(
                "These precautions must be confirmed before the first device turns on; run it "
                "in a terminal to answer, or add --yes to confirm them for an unattended session."
            )
        print(text, file=sys.stderr)
        if self.keys is not None:
            # the keys read the terminal for the whole session: the answer is their next line
            return await self.keys.ask("Confirm?")
        answer = (await _read_line("Confirm? [y/N] ")).strip().lower()
        return answer in ("y", "yes")

    def notice(self, text: str) -> None:
        print(f"relieve: warning: {text}", file=sys.stderr)

    async def health_answers(self) -> Mapping[str, bool] | None:
        if self.yes or not self.interactive:
            return None  # --yes never answers them; unattended, `relieve health` does
        ask = functools.partial(ask_questions, input, functools.partial(print, file=sys.stderr))
        with self.keys.lent() if self.keys is not None else contextlib.nullcontext():
            return await _in_daemon_thread(ask)

    @property
    def ask_resume(self) -> AskResume | None:
        return self.keys.ask if self.keys is not None else None


async def _in_daemon_thread(call: Callable[[], _T]) -> _T:
    """``call()`` (reading the terminal) on a daemon thread: the event loop keeps running, and
    a Ctrl-C that stops the session does not wait for the person to press Enter."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()

    def work() -> None:
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001 - the waiting coroutine raises it
            loop.call_soon_threadsafe(_fail, done, exc)
        else:
            loop.call_soon_threadsafe(_succeed, done, result)

    threading.Thread(target=work, name="relieve-terminal", daemon=True).start()
    return await done


def _succeed(future: asyncio.Future[_T], result: _T) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[_T], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


async def _read_line(prompt: str) -> str:
    """One line from the terminal, without blocking the event loop (Ctrl-C still stops)."""
    print(prompt, end="", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str] = loop.create_future()
    fd = sys.stdin.fileno()

    def readable() -> None:
        if not line.done():
            line.set_result(sys.stdin.readline())

    loop.add_reader(fd, readable)
    try:
        return await line
    finally:
        loop.remove_reader(fd)


def session_request(
    args: argparse.Namespace,
    *,
    world: Sequence[str] | None = None,
    started_by: str = "cli",
    profile: str | None = None,
) -> SessionRequest:
    """The request the command line's options make (``relieve run``, ``demo`` and ``tui``)."""
    roles = {role: value for role in ROLES if (value := getattr(args, role, None)) is not None}
    return SessionRequest(
        profile=args.profile if profile is None else profile,
        roles=roles,
        extend=bool(getattr(args, "extend", False)),
        lift=_lift(getattr(args, "override_allowance", None)),
        simulate=bool(args.simulate),
        simulator=args.simulator,
        world=world,
        speed=args.speed,
        started_by=started_by,
    )


def _terminal(args: argparse.Namespace) -> Terminal:
    yes = bool(getattr(args, "yes", False))
    interactive = sys.stdin.isatty() and not getattr(args, "json", False)
    # an attended session at a terminal takes line commands (pause, resume, stop) and answers
    keys = SessionKeys() if interactive and not yes else None
    return Terminal(yes=yes, interactive=interactive, keys=keys)


@contextlib.contextmanager
def signal_handlers(
    handlers: Sequence[tuple[signal.Signals, Callable[[], None]]],
) -> Iterator[None]:
    """Each signal calls its handler on the event loop while the block runs."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig, handler in handlers:
        try:
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _signals(session: Session) -> contextlib.AbstractContextManager[None]:
    """Ctrl-C and SIGTERM stop the session (every device OFF), whatever it is doing."""
    return signal_handlers(
        (
            (signal.SIGINT, functools.partial(session.stop, "stopped by you (Ctrl-C)")),
            (signal.SIGTERM, functools.partial(session.stop, "terminated")),
        )
    )


async def run_session(
    service: SessionService,
    request: SessionRequest,
    terminal: Terminal,
    ledger: Ledger,
    emit: Callable[[Event], None],
) -> Finished:
    """The session through the service, shown with ``emit``, controlled from the terminal."""
    session = service.session(request, terminal, ledger)
    session.subscribe(emit)
    keys = terminal.keys
    with _signals(session), keys.attached(session) if keys else contextlib.nullcontext():
        return await session.run()


def _exit_code(finished: Finished) -> int:
    if finished.outcome == "aborted" or not finished.recorded:
        return EXIT_ABORTED
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """``relieve run PROFILE ...``: through the node daemon when one runs on the data
    directory, else in this process."""
    request = session_request(args)
    clock_for(request)  # a bad --speed is refused before anything is opened or asked
    service = SessionService(ProfileLibrary(args.config_dir), config_dir=args.config_dir)
    emit: Callable[[Event], None] = JsonLines() if getattr(args, "json", False) else LiveView()
    data_dir = args.data_dir if args.data_dir is not None else default_data_dir()
    finished = asyncio.run(_run_here_or_there(service, request, _terminal(args), data_dir, emit))
    return _exit_code(finished)


async def _run_here_or_there(
    service: SessionService,
    request: SessionRequest,
    terminal: Terminal,
    data_dir: Path,
    emit: Callable[[Event], None],
) -> Finished:
    from controller.daemon.client import connect

    connection = await connect(data_dir)
    if connection is not None:
        try:
            return await run_through_daemon(connection, request, terminal, emit)
        finally:
            await connection.close()
    with Ledger.open(data_dir, simulated=request.simulated) as ledger:
        return await run_session(service, request, terminal, ledger, emit)


async def run_through_daemon(
    connection: DaemonConnection,
    request: SessionRequest,
    terminal: Terminal,
    emit: Callable[[Event], None],
) -> Finished:
    """The session on the node daemon: asked here, run there, shown here. Ctrl-C stops it;
    SIGTERM, SIGHUP and ``d`` leave it running there."""
    from controller.cli.node import remote_signals
    from controller.daemon.client import RemoteSession, radio_conflict

    node = (await connection.request("status")).get("node") or {}
    conflict = radio_conflict(request, node)
    if conflict is not None:
        raise RunError(conflict)
    session = RemoteSession(connection, request, terminal)
    session.subscribe(emit)
    keys = terminal.keys
    with remote_signals(session), keys.attached(session) if keys else contextlib.nullcontext():
        return await session.run()


def _lift(values: list[str] | None) -> tuple[str, ...]:
    if values is None:
        return ()
    from controller.ledger.allowances import ALLOWANCE_RULES

    if values == []:
        return tuple(sorted(ALLOWANCE_RULES))
    return tuple(v.upper() for value in values for v in value.split(",") if v)


def demo(args: argparse.Namespace) -> int:
    """``relieve demo``: the lower-back routine on an in-process simulated world, at x60."""
    args.profile = DEMO_PROFILE
    args.simulate, args.simulator = True, None
    args.yes = True
    args.speed = DEMO_SPEED if args.speed is None else args.speed
    for role in ROLES:
        setattr(args, role, None)
    args.extend, args.override_allowance = False, None
    request = session_request(args, world=DEMO_DEVICES)
    clock_for(request)  # a bad --speed is refused before anything is printed
    library = ProfileLibrary(args.config_dir)
    service = SessionService(library, config_dir=args.config_dir)
    emit: Callable[[Event], None] = JsonLines() if getattr(args, "json", False) else LiveView()
    if not getattr(args, "json", False):
        title = library.get(DEMO_PROFILE).title
        print(
            f"relieve demo: '{title}' on simulated devices at x{request.speed:g}, "
            "with a throw-away ledger. The precautions are taken as confirmed, as --yes does.\n",
            flush=True,
        )
    with Ledger.open_temporary(simulated=True) as ledger:
        finished = asyncio.run(run_session(service, request, _terminal(args), ledger, emit))
    return _exit_code(finished)
