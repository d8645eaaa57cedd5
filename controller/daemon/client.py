"""The node daemon's clients: ``relieve run``, ``tui``, ``status``, ``stop`` and ``attach``.

:func:`connect` reaches the daemon of a data directory (None when none runs there).
:class:`RemoteSession` is a session the daemon runs, with the controls and events of an
in-process :class:`~controller.session.service.Session`, so a front end shows both the same
way. The person is asked here, before the start request is sent: the precautions (and the
massage extension) the daemon's ``check`` lists, and the health questions when they were never
answered; the start request carries the answers.

A client that goes away never affects the session: closing the connection (or being killed)
leaves it running in the daemon. Only a stop (Ctrl-C, ``s``, ``relieve stop``) stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.daemon.protocol import (
    MAX_LINE_BYTES,
    SOCKET_NAME,
    LineSplitter,
    ProtocolError,
    decode_line,
    encode,
)
from controller.daemon.server import DaemonError, short_path
from controller.library import names_a_file
from controller.session.events import (
    Event,
    EventDecodeError,
    Finished,
    StateChanged,
    event_from_json,
)
from controller.session.service import NotConfirmedError, Person, SessionError, SessionRequest
from profiles.errors import RelieveError

__all__ = ["DaemonConnection", "RemoteSession", "arm_remote_start", "connect", "radio_conflict"]

CONNECT_TIMEOUT_S = 5.0
REPLY_TIMEOUT_S = 30.0  # a check reads the profile and the history; a start waits for binding
START_TIMEOUT_S = 180.0  # binding scans and connects: it can take a while on real devices

Listener = Callable[[Event], None]


class DaemonConnection:
    """One connection to a node daemon: requests with replies, and the lines it streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.on_event: Listener | None = None
        self.on_question: Callable[[int, str], None] | None = None
        self.on_question_closed: Callable[[int], None] | None = None
        self.closed = asyncio.Event()
        self._reading = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        splitter = LineSplitter(MAX_LINE_BYTES * 16)
        try:
            while data := await self._reader.read(65536):
                for line in splitter.feed(data):
                    if line is not None:
                        self._line(line)
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(_lost())

    def _line(self, line: bytes) -> None:
        try:
            obj = decode_line(line)
        except ProtocolError:
            return  # not ours to act on; the daemon never sends it
        if not isinstance(obj, dict):
            return
        if "reply" in obj:
            number = obj.get("id")
            future = self._waiting.pop(number, None) if isinstance(number, int) else None
            if future is not None and not future.done():
                future.set_result(obj)
        elif "question" in obj:
            number = obj.get("question")
            if not isinstance(number, int):
                return
            if obj.get("closed"):
                if self.on_question_closed is not None:
                    self.on_question_closed(number)
            elif self.on_question is not None and isinstance(obj.get("text"), str):
                self.on_question(number, obj["text"])
        elif "type" in obj and self.on_event is not None:
            try:
                event = event_from_json(obj)
            except EventDecodeError:
                return  # a newer daemon's event this client does not know
            self.on_event(event)

    async def request(
        self, verb: str, timeout_s: float = REPLY_TIMEOUT_S, **fields: Any
    ) -> dict[str, Any]:
        """Send a request and wait for its reply (raises :class:`DaemonError` on a refusal)."""
        number = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        try:
            self.send({"request": verb, "id": number, **fields})
            answer = await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise DaemonError(
                f"The node daemon did not answer '{verb}' within {timeout_s:g} s; see its log "
                "(journalctl -u relieve)."
            ) from None
        finally:
            self._waiting.pop(number, None)
        if not answer.get("ok"):
            refused = DaemonError(str(answer.get("error") or f"The node daemon refused '{verb}'."))
            refused.reply = answer  # the whole reply, for a caller that reads more of it
            raise refused
        return answer

    def send(self, obj: Mapping[str, Any]) -> None:
        if self.closed.is_set() or self._writer.is_closing():
            raise _lost()
        self._writer.write(encode(obj))

    def fire(self, verb: str, **fields: Any) -> None:
        """Send a request whose reply nobody waits for (a control from a key or a signal)."""
        with contextlib.suppress(DaemonError):
            self.send({"request": verb, **fields})

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reading


def _lost() -> DaemonError:
    return DaemonError(
        "The connection to the node daemon was lost: if the daemon still runs, the session goes "
        "on there (relieve status, attach, stop); if it died, its pads switch themselves off and "
        "the next relieve command records the session as interrupted."
    )


async def connect(data_dir: Path) -> DaemonConnection | None:
    """The daemon of ``data_dir``, or None when none runs there (no socket, or a socket
    left by a daemon that is gone)."""
    path = data_dir / SOCKET_NAME
    if not path.exists():
        return None
    try:
        with short_path(path) as address:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(address, limit=MAX_LINE_BYTES * 16),
                CONNECT_TIMEOUT_S,
            )
    except (ConnectionRefusedError, FileNotFoundError):
        return None
    except PermissionError:
        raise DaemonError(
            f"The node daemon's socket {path} belongs to another user; run this as the user "
            "the daemon runs as (e.g. sudo -u relieve relieve ...)."
        ) from None
    except TimeoutError:
        raise DaemonError(
            f"The node daemon on {path} does not answer; it may be frozen. Check it "
            "(systemctl status relieve) or stop it."
        ) from None
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
            return None
        raise DaemonError(f"Cannot reach the node daemon on {path} ({exc.strerror}).") from None
    return DaemonConnection(reader, writer)


def radio_conflict(request: SessionRequest, node: Mapping[str, Any]) -> str | None:
    """Why ``request``'s own radio options cannot run on the daemon's node (None: they can:
    none were given, or they name exactly what the daemon has)."""
    asked = request.simulate or request.simulator is not None or request.speed is not None
    if not asked:
        return None
    same = (
        request.simulate == bool(node.get("simulate"))
        and request.simulator == node.get("simulator")
        and (request.speed is None or request.speed == node.get("speed"))
    )
    if same:
        return None
    return (
        f"A node daemon (relieve serve) owns this data directory's radio ({node.get('radio')}), "
        "so the session runs on its devices; leave out --simulate, --simulator and --speed, or "
        "give another --data-dir."
    )


class RemoteSession:
    """A session the node daemon runs, seen and controlled from this client.

    ``attach_only``: follow the session that runs now instead of starting one. ``by``: this
    front end, as the daemon records who paused or stopped the session.
    """

    def __init__(
        self,
        connection: DaemonConnection,
        request: SessionRequest | None,
        person: Person,
        *,
        attach_only: bool = False,
        by: str = "relieve run",
    ) -> None:
        self.connection = connection
        self.by = by  # who the daemon records as pausing or stopping
        self._profile = request.profile if request is not None else ""
        if names_a_file(self._profile):
            # the daemon has its own working directory: a file is named from the root
            self._profile = str(Path(self._profile).absolute())
        self.request = request
        self.person = person
        self.attach_only = attach_only
        self.plan = None  # the daemon holds the compiled plan
        self.record_id: int | None = None
        self.detached = False
        self._listeners: list[Listener] = []
        self._finished: asyncio.Future[Finished] | None = None
        self._began = False
        self._paused = False
        self._questions: dict[int, asyncio.Task[None]] = {}

    # --- what a front end uses, as on Session ----------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    @property
    def running(self) -> bool:
        return self._began and not self.detached

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self, reason: str = "paused by you") -> None:
        self.connection.fire("pause", by=self.by)

    def resume(self) -> None:
        self.connection.fire("resume", by=self.by)

    def stop(self, reason: str = "stopped by you") -> None:
        self.connection.fire("stop", by=self.by)

    def emergency_stop(self) -> None:
        self.connection.fire("emergency-stop", by=self.by)

    def detach(self) -> None:
        """Leave the session running in the daemon and stop following it."""
        self.detached = True
        if self._finished is not None and not self._finished.done():
            self._finished.cancel()

    # --- the run -----------------------------------------------------------------------------

    async def run(self) -> Finished:
        """Ask the person, start (or attach), follow the events until the session finishes;
        returns its :class:`Finished`. A refusal raises a :class:`RelieveError`; a lost
        connection or a detach raises :class:`DaemonError` (the session goes on)."""
        loop = asyncio.get_running_loop()
        self._finished = loop.create_future()
        connection = self.connection
        connection.on_event = self._event
        connection.on_question = self._question
        connection.on_question_closed = self._question_closed
        if self.attach_only:
            answer = await connection.request("attach")
            if answer.get("session") is None:
                raise DaemonError("No session is running on this node; nothing to attach to.")
            self._began = True
        else:
            await self._start()
        waiting_for_end: asyncio.Future[Any] = asyncio.ensure_future(connection.closed.wait())
        finished: asyncio.Future[Any] = self._finished
        try:
            await asyncio.wait({finished, waiting_for_end}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting_for_end.cancel()
        if self._finished.done() and not self._finished.cancelled():
            return self._finished.result()
        if self.detached:
            raise DaemonError("Detached; the session goes on in the node daemon (relieve attach).")
        raise _lost()

    async def _start(self) -> None:
        request = self.request
        if request is None:
            raise SessionError("relieve bug: a start needs a request")
        connection = self.connection
        lift = list(request.lift)
        profile = self._profile
        check = await connection.request("check", profile=profile, extend=request.extend, lift=lift)
        health: Mapping[str, bool] | None = None
        if not check.get("allowed"):
            problem = str(check.get("problem") or "The session may not start now.")
            if not check.get("health_needed"):
                raise SessionError(problem)
            health = await self.person.health_answers()
            if health is None:
                raise SessionError(problem)
        confirmed = []
        for item in check.get("confirm") or []:
            if not isinstance(item, dict):
                continue
            if not await self.person.confirm(str(item.get("text"))):
                raise NotConfirmedError("Not confirmed, so nothing was turned on.")
            confirmed.append(item.get("id"))
        fields: dict[str, Any] = {
            "profile": profile,
            "roles": dict(request.roles),
            "extend": request.extend,
            "lift": lift,
            "confirmed": confirmed,
            "started_by": request.started_by,
        }
        if health is not None:
            fields["health_answers"] = dict(health)
        answer = await connection.request("start", timeout_s=START_TIMEOUT_S, **fields)
        session = answer.get("session")
        if isinstance(session, dict) and isinstance(session.get("id"), int):
            self.record_id = session["id"]
        self._began = True

    def _event(self, event: Event) -> None:
        if self.detached:
            return
        if isinstance(event, StateChanged):
            self._paused = event.state == "paused"
        for listener in list(self._listeners):
            listener(event)
        finished = self._finished
        if isinstance(event, Finished) and finished is not None and not finished.done():
            finished.set_result(event)

    def _question(self, number: int, text: str) -> None:
        ask = self.person.ask_resume
        if ask is None or number in self._questions:
            return

        async def answer() -> None:
            with contextlib.suppress(RelieveError):
                yes = await ask(text)
                self.connection.fire("answer", question=number, yes=bool(yes))

        self._questions[number] = asyncio.ensure_future(answer())

    def _question_closed(self, number: int) -> None:
        task = self._questions.pop(number, None)
        if task is not None:
            task.cancel()  # another client answered; the asking here is closed


async def arm_remote_start(data_dir: Path | None, person: Person) -> tuple[bool, str]:
    """Arm remote start in the daemon of ``data_dir``: ``person`` confirms the precautions the
    start profiles need. Whether it is armed, and one sentence saying what happened (never
    raises a RelieveError)."""
    connection = await connect(data_dir) if data_dir is not None else None
    if connection is None:
        return False, "No node daemon (relieve serve) runs here; remote start is armed in one."
    try:
        try:
            answer = await connection.request("arm", confirmed=[])
        except DaemonError as first:
            needed = first.reply
            if needed is None or needed.get("code") != "confirm":
                raise
            confirmed = []
            for item in needed.get("confirm") or []:
                if not isinstance(item, dict):
                    continue
                if not await person.confirm(str(item.get("text"))):
                    return False, "Not confirmed, so remote start is not armed."
                confirmed.append(item.get("id"))
            answer = await connection.request("arm", confirmed=confirmed)
    except RelieveError as exc:
        return False, " ".join(str(exc).split())
    finally:
        await connection.close()
    profiles = ", ".join(str(p) for p in answer.get("profiles") or [])
    until = str(answer.get("armed_until") or "?")
    with contextlib.suppress(ValueError):
        until = datetime.fromisoformat(until).astimezone().strftime("%H:%M")
    return True, f"Remote start armed until {until} for one session of: {profiles}."
