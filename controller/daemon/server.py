"""``relieve serve``: the node daemon. It owns a room's radio and its sessions.

One daemon per data directory (the *node*): a lock file refuses a second one. It listens on a
unix socket in the data directory (owner only, mode 0600) for the JSON-lines requests of
:mod:`controller.daemon.protocol`, runs at most one session at a time through the
:class:`~controller.session.service.SessionService`, and streams that session's events to every
attached client.

What it promises, whatever a client does:

* a client that disconnects, is killed, floods requests or sends garbage never affects the
  session; bad lines get an error reply and change nothing; a client too slow to read its
  lines is dropped, the session goes on;
* the precautions are confirmed by the client that starts the session (the start request
  carries them), before any device is switched on;
* SIGTERM / SIGINT stop the session (every device OFF, outcome recorded) and exit 0; the
  daemon never starts or resumes therapy by itself;
* stop and emergency stop are never rate-limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.daemon.protocol import (
    SOCKET_NAME,
    AnswerRequest,
    ArmRequest,
    AttachRequest,
    CheckRequest,
    ControlRequest,
    LineSplitter,
    ProtocolError,
    Request,
    StartRequest,
    StatusRequest,
    decode_request,
    encode,
    error_reply,
    reply,
)
from controller.ledger import Ledger
from controller.session.events import (
    Alarm,
    Event,
    Notice,
    PhaseChanged,
    SessionStarted,
    StateChanged,
    Telemetry,
)
from controller.session.service import (
    AskResume,
    Person,
    Session,
    SessionError,
    SessionRequest,
    SessionService,
    confirmation_id,
)
from drivers.core.clock import Clock
from profiles.errors import RelieveError

__all__ = ["DaemonError", "NodeDaemon", "NodeLock", "Radio", "TokenBucket", "socket_path"]

log = logging.getLogger("controller.daemon")

LOCK_NAME = "relieve-serve.lock"
MAX_CLIENTS = 32
MAX_QUEUED_LINES = 2000  # a client this far behind is dropped (the session is not)
READ_CHUNK = 4096
RATE_PER_S = 20.0  # requests a client may send per second, on average ...
RATE_BURST = 40.0  # ... and at once
CLOSE_WAIT_S = 2.0  # real seconds a closing connection may take to hand over its last lines
PENDING_WAIT_S = 60.0  # ... and a client that stopped sending, to get its pending replies
REPLAY_MAX = 5000  # events kept for a client that attaches mid-session
ARM_S = 600.0  # real seconds an arming of remote start lasts (the precautions confirmed here)
UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with its NUL


class DaemonError(RelieveError):
    """The daemon cannot start (or a client cannot reach it, or it refused a request); the
    message says why. ``reply``: the daemon's whole error reply, when it refused."""

    reply: dict[str, Any] | None = None


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET_NAME


@contextlib.contextmanager
def short_path(path: Path) -> Iterator[str]:
    """``path`` as a unix socket address: itself, or, when too long for one, the same file
    reached through an open descriptor of its directory (``/proc/self/fd/N/name``)."""
    if len(os.fsencode(path)) <= UNIX_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


class NodeLock:
    """The lock that makes one daemon per data directory; released when the process ends."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise DaemonError(
                f"Cannot use the data directory {self.path.parent} ({exc.strerror}); check that "
                "it exists and that this user may write to it."
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DaemonError(
                f"Another relieve serve already runs on the data directory {self.path.parent} "
                f"(process {holder}); stop it first, or give this one another --data-dir."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def daemon_pid(data_dir: Path) -> int | None:
    """The pid of the daemon that holds ``data_dir``'s lock, or None when none does."""
    path = data_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else 0
        return None
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Radio:
    """The daemon's devices: the radio options every session it runs gets."""

    simulate: bool = False
    simulator: str | None = None
    world: tuple[str, ...] | None = None
    speed: float | None = None
    clock: Clock | None = None  # tests: a virtual clock

    @property
    def simulated(self) -> bool:
        return self.simulate or self.simulator is not None

    def describe(self) -> str:
        if self.simulate:
            where = "simulated devices (in-process)"
        elif self.simulator is not None:
            where = f"simulated devices ({self.simulator})"
        else:
            where = "the Bluetooth adapter"
        if self.speed is not None and self.speed != 1:
            where += f" at x{self.speed:g}"
        return where


class TokenBucket:
    """A token bucket: at most ``burst`` at once, ``rate`` a second on average."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class _Client:
    """One connection: its lines go out in order through a bounded queue."""

    def __init__(self, number: int, writer: asyncio.StreamWriter) -> None:
        self.number = number
        self.writer = writer
        self.pid = _peer_pid(writer)
        self.attached = False
        self.closed = False
        self.bucket = TokenBucket(RATE_PER_S, RATE_BURST)
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue(MAX_QUEUED_LINES)
        self._cut = False  # cut off (too slow): the lines still queued are dropped
        self.tasks: set[asyncio.Task[Any]] = set()
        self.writing = asyncio.ensure_future(self.write_loop())

    def __str__(self) -> str:
        return f"pid {self.pid}" if self.pid else f"client {self.number}"

    def send(self, obj: Mapping[str, Any]) -> None:
        if self.closed:
            return
        try:
            self._out.put_nowait(encode(obj))
        except asyncio.QueueFull:
            log.warning("%s reads too slowly; disconnected (the session goes on)", self)
            self.close()

    def close(self) -> None:
        """No more lines; those queued still go out, unless the queue is full (a client that
        does not read): then the connection is cut at once."""
        if self.closed:
            return
        self.closed = True
        self.attached = False
        try:
            self._out.put_nowait(None)
        except asyncio.QueueFull:
            self._cut = True
            self.writer.transport.abort()

    async def write_loop(self) -> None:
        """Write the queued lines in order; after the last, close the connection gracefully
        (what is buffered still reaches the client), unless it was cut off or broke."""
        graceful = False
        try:
            while (line := await self._out.get()) is not None:
                self.writer.write(line)
                await self.writer.drain()
            graceful = not self._cut
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed = True
            self.attached = False
            if graceful:
                self.writer.close()
                try:
                    await asyncio.wait_for(self.writer.wait_closed(), CLOSE_WAIT_S)
                except (TimeoutError, ConnectionError, OSError):
                    self.writer.transport.abort()
            else:
                self.writer.transport.abort()


def _peer_pid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    pid, _, _ = struct.unpack("3i", creds)
    return pid or None


@dataclass
class _Current:
    """The session the node runs, and what a status or a late attach needs of it."""

    session: Session
    request: StartRequest
    started_by: str
    started_at: datetime
    began: asyncio.Future[str | None]  # done with None: it began; with a sentence: refused
    task: asyncio.Task[None] | None = None
    started: SessionStarted | None = None
    phase: PhaseChanged | None = None
    state: str = "starting"
    replay: list[Event] = field(default_factory=list)
    telemetry: dict[str, Telemetry] = field(default_factory=dict)
    alarms: list[Alarm] = field(default_factory=list)
    links: dict[str, bool] = field(default_factory=dict)  # role: its link is up

    def note(self, event: Event) -> None:
        if isinstance(event, Telemetry):
            self.telemetry[event.role] = event
            return
        if len(self.replay) < REPLAY_MAX:
            self.replay.append(event)
        if isinstance(event, SessionStarted):
            self.started = event
            self.state = "running" if event.t >= 0 else "preconditioning"
            self.links = {role: True for role, name in event.devices.items() if name != "manual"}
        elif isinstance(event, PhaseChanged):
            self.phase = event
            if self.state in ("preconditioning", "starting") and event.t >= 0:
                self.state = "running"
            if event.mode in ("preheat", "precool"):
                self.state = "preconditioning"
        elif isinstance(event, StateChanged):
            self.state = "running" if event.state in ("resumed", "link-restored") else event.state
            if event.state == "link-restored":
                self.links = dict.fromkeys(self.links, True)
        elif isinstance(event, Alarm):
            self.alarms.append(event)
            if event.reason == "link-lost" and event.role in self.links:
                self.links[event.role] = False

    def events_so_far(self) -> list[Event]:
        """The session's events for a client that attaches now: every event except
        telemetry, then each device's latest telemetry."""
        return [*self.replay, *self.telemetry.values()]

    def status(self) -> dict[str, Any]:
        session = self.session
        now = session.session_time()
        out: dict[str, Any] = {
            "id": session.record_id,
            "profile": session.request.profile,
            "state": "paused" if session.paused else self.state,
            "started_by": self.started_by,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "t": now,
        }
        if self.started is not None:
            out["profile"] = self.started.profile
            out["title"] = self.started.title
            out["devices"] = dict(self.started.devices)
            out["total_s"] = self.started.total_s
            if now is not None:
                out["time_left_s"] = max(0.0, self.started.total_s - max(now, 0.0))
        phase = self.phase
        if phase is not None:
            out["phase"] = phase.to_json()
            if now is not None and phase.duration_s is not None:
                out["phase_left_s"] = max(0.0, phase.t + phase.duration_s - now)
        if self.alarms:
            out["alarms"] = [alarm.to_json() for alarm in self.alarms]
        if self.links:
            out["links"] = dict(self.links)
        return out


class _Starter:
    """The person behind a start request, as the session service asks them: the answers are
    in the request (the client asked them before sending it)."""

    def __init__(self, daemon: NodeDaemon, client: _Client, request: StartRequest) -> None:
        self.daemon, self.client, self.request = daemon, client, request

    async def confirm(self, text: str) -> bool:
        key = confirmation_id(text)
        if key is None or key not in self.request.confirmed:
            raise SessionError(
                f"The start request did not confirm this, so nothing was turned on: {text} "
                "Ask the person, then send the start again with it in 'confirmed'."
            )
        return True

    def notice(self, text: str) -> None:
        self.client.send(Notice(0.0, text).to_json())

    async def health_answers(self) -> Mapping[str, bool] | None:
        return self.request.health_answers

    @property
    def ask_resume(self) -> AskResume | None:
        return self.daemon.ask_attached


class _ArmedPerson:
    """The person behind a remote start: the precautions were confirmed when remote start
    was armed at a local client; nothing else can be asked (no health answers, no override).
    """

    def __init__(self, daemon: NodeDaemon, confirmed: frozenset[str], source: str) -> None:
        self.daemon, self.confirmed, self.source = daemon, confirmed, source

    async def confirm(self, text: str) -> bool:
        key = confirmation_id(text)
        if key is None or key not in self.confirmed:
            raise SessionError(
                "This was not confirmed when remote start was armed, so nothing was turned "
                f"on: {text}"
            )
        return True

    def notice(self, text: str) -> None:
        log.info("notice for a remote start (%s): %s", self.source, text)

    async def health_answers(self) -> Mapping[str, bool] | None:
        return None  # asked at a local client only (relieve health)

    @property
    def ask_resume(self) -> AskResume | None:
        return self.daemon.ask_attached


class NodeDaemon:
    """Serves one node. ``serve()`` runs until :meth:`shutdown` (or SIGTERM / SIGINT)."""

    def __init__(
        self,
        service: SessionService,
        ledger: Ledger,
        data_dir: Path,
        radio: Radio,
    ) -> None:
        if ledger.simulated != radio.simulated:
            raise DaemonError("relieve bug: the daemon's history and radio differ in kind")
        self.service = service
        self.ledger = ledger
        self.data_dir = data_dir
        self.radio = radio
        self.socket_path = socket_path(data_dir)
        self.since = datetime.now(UTC)
        self.current: _Current | None = None
        self.last: dict[str, Any] | None = None  # the last session's finished event and id
        self.clients: set[_Client] = set()
        self.ready = asyncio.Event()
        self._numbers = iter(range(1, 2**62))
        self._questions: dict[int, asyncio.Future[bool]] = {}
        self._question_numbers = iter(range(1, 2**31))
        self._question_texts: dict[int, str] = {}
        self._stopping: asyncio.Event | None = None
        self._signals = 0
        # who hears of every event and change besides the attached clients (the MQTT bridge)
        self.observers: list[Callable[[Event | None], None]] = []
        # the profiles a remote start may run (empty: remote start is off), and the arming:
        # the precautions confirmed at a local client, until a monotonic deadline
        self.remote_profiles: tuple[str, ...] = ()
        self.armed: tuple[frozenset[str], float, datetime] | None = None

    # --- the server ----------------------------------------------------------------------

    async def serve(self, *, handle_signals: bool = True) -> None:
        lock = NodeLock(self.data_dir)
        lock.acquire()
        self._stopping = asyncio.Event()
        if self.last is None:  # a restart: how the last session ended is in the history
            self.last = await asyncio.to_thread(last_recorded, self.ledger)
        try:
            server = await self._listen()
            installed = self._install_signals() if handle_signals else []
            log.info(
                "serving %s on %s with %s",
                self.data_dir,
                self.socket_path,
                self.radio.describe(),
            )
            self.ready.set()
            try:
                await self._stopping.wait()
                await self._end_session()
            finally:
                loop = asyncio.get_running_loop()
                for sig in installed:
                    loop.remove_signal_handler(sig)
                server.close()
                clients = list(self.clients)
                for client in clients:
                    client.close()
                # the last lines (the session's `finished`) still reach every client
                writing = [client.writing for client in clients]
                if writing:
                    await asyncio.wait(writing, timeout=CLOSE_WAIT_S * 2)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(server.wait_closed(), CLOSE_WAIT_S)
                with contextlib.suppress(OSError):
                    self.socket_path.unlink()
            log.info("stopped; every device is off")
        finally:
            lock.release()

    async def _listen(self) -> asyncio.Server:
        path = self.socket_path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a socket left by a daemon that was killed (we hold the lock)
        old = os.umask(0o177)
        try:
            with short_path(path) as address:
                server = await asyncio.start_unix_server(
                    self._connected, address, limit=READ_CHUNK * 4
                )
        except OSError as exc:
            raise DaemonError(
                f"Cannot listen on {path} ({exc.strerror}); check the data directory."
            ) from None
        finally:
            os.umask(old)
        path.chmod(0o600)
        return server

    def _install_signals(self) -> list[signal.Signals]:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.shutdown, sig.name)
                installed.append(sig)
        return installed

    def shutdown(self, why: str = "asked to") -> None:
        """Stop the session (every device OFF) and the daemon; again: an emergency stop."""
        self._signals += 1
        current = self.current
        if self._signals == 1:
            log.info("stopping (%s)", why)
            if current is not None:
                current.session.stop(f"the node daemon was stopped ({why})")
        elif current is not None:
            log.warning("stopping again (%s): emergency stop", why)
            current.session.emergency_stop()
        if self._stopping is not None:
            self._stopping.set()

    async def _end_session(self) -> None:
        current = self.current
        if current is not None and current.task is not None:
            current.session.stop("the node daemon was stopped")
            with contextlib.suppress(Exception):
                await asyncio.shield(current.task)

    # --- a connection ---------------------------------------------------------------------

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _Client(next(self._numbers), writer)
        if len(self.clients) >= MAX_CLIENTS or (self._stopping and self._stopping.is_set()):
            client.send(
                error_reply(None, None, "The node daemon is busy or stopping; try again later.")
            )
            client.close()
            await client.writing
            return
        self.clients.add(client)
        log.debug("%s connected", client)
        splitter = LineSplitter()
        try:
            while not client.closed:
                try:
                    data = await reader.read(READ_CHUNK)
                except (ConnectionError, OSError):
                    break
                if not data:
                    # no more requests (a one-shot client half-closes after writing): no more
                    # events or questions either, but the replies it waits for still come
                    client.attached = False
                    self._answer_if_nobody_listens()
                    if client.tasks:
                        await asyncio.wait(set(client.tasks), timeout=PENDING_WAIT_S)
                    break
                for line in splitter.feed(data):
                    self._line(client, line)
                    if client.closed:
                        break
        finally:
            self.clients.discard(client)
            client.close()
            for task in list(client.tasks):
                task.cancel()
            self._answer_if_nobody_listens()
            with contextlib.suppress(Exception):
                await client.writing
            log.debug("%s disconnected", client)

    def _line(self, client: _Client, line: bytes | None) -> None:
        if line is None:
            client.send(
                error_reply(
                    None,
                    None,
                    "The line is too long; a request is one short JSON object.",
                    code="too-long",
                )
            )
            return
        if not line.strip():
            return  # an empty line is no request
        try:
            request = decode_request(line)
        except ProtocolError as exc:
            client.send(error_reply(exc.verb, exc.request_id, str(exc), code=exc.code))
            return
        urgent = isinstance(request, ControlRequest) and request.request in (
            "stop",
            "emergency-stop",
        )
        if not client.bucket.take() and not urgent:
            client.send(
                error_reply(
                    request.request,
                    request.id,
                    f"Too many requests; at most {RATE_PER_S:g} a second. This one did nothing.",
                    code="too-many",
                )
            )
            return
        try:
            self._request(client, request)
        except RelieveError as exc:
            client.send(error_reply(request.request, request.id, str(exc)))
        except Exception as exc:  # a bug must not take the node (and its session) down
            log.exception("relieve bug handling %s from %s", request.request, client)
            client.send(error_reply(request.request, request.id, f"relieve bug: {exc}", "bug"))

    def _request(self, client: _Client, request: Request) -> None:
        if isinstance(request, StatusRequest):
            client.send(reply("status", request.id, **self.status()))
        elif isinstance(request, AttachRequest):
            self._attach(client, request.id)
        elif isinstance(request, CheckRequest):
            self._spawn(client, self._check(client, request))
        elif isinstance(request, StartRequest):
            self._start(client, request)
        elif isinstance(request, ControlRequest):
            self._control(client, request)
        elif isinstance(request, AnswerRequest):
            self._answer(client, request)
        elif isinstance(request, ArmRequest):
            self._spawn(client, self._arm(client, request))

    def _spawn(self, client: _Client, work: Any) -> None:
        task = asyncio.ensure_future(work)
        client.tasks.add(task)
        task.add_done_callback(client.tasks.discard)

    # --- requests -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        node = {
            "data_dir": str(self.data_dir),
            "pid": os.getpid(),
            "simulated": self.radio.simulated,
            "simulate": self.radio.simulate,
            "simulator": self.radio.simulator,
            "speed": self.radio.speed if self.radio.speed is not None else 1.0,
            "radio": self.radio.describe(),
            "since": self.since.isoformat(timespec="seconds"),
            "attached": sum(1 for client in self.clients if client.attached),
        }
        current = self.current
        return {
            "node": node,
            "session": current.status() if current is not None else None,
            "last": self.last,
        }

    def _attach(self, client: _Client, request_id: int | str | None) -> None:
        client.attached = True
        client.send(reply("attach", request_id, **self.status()))
        current = self.current
        if current is not None:
            for event in current.events_so_far():
                client.send(event.to_json())
        for number in self._questions:
            client.send({"question": number, "text": self._question_texts.get(number, "")})
        log.info("client command: attach (from %s)", client)

    async def _check(self, client: _Client, request: CheckRequest) -> None:
        if self.current is not None:
            client.send(error_reply("check", request.id, self._busy(self.current), code="busy"))
            return
        service = self.service
        lift = tuple(rule.upper() for rule in request.lift)

        def work() -> dict[str, Any]:
            try:
                confirm = service.confirmations(request.profile, extend=request.extend)
                title = service.library.resolve(request.profile).title
            except RelieveError as exc:
                return {"allowed": False, "problem": " ".join(str(exc).split())}
            found = service.availability(
                request.profile, self.ledger, extend=request.extend, lift=lift
            )
            out: dict[str, Any] = {
                "title": title,
                "allowed": found.allowed,
                "problem": found.sentence,
                "health_needed": found.health_needed,
                "confirm": [{"id": key, "text": text} for key, text in confirm.items()],
                "lifted": list(found.lifted),
            }
            return out

        result = await asyncio.to_thread(work)
        client.send(reply("check", request.id, profile=request.profile, **result))

    @staticmethod
    def _busy(current: _Current) -> str:
        return (
            f"A session is already running on this node ({current.session.request.profile}, "
            f"started by {current.started_by}); stop it first (relieve stop)."
        )

    def _start(self, client: _Client, request: StartRequest) -> None:
        if self._stopping is not None and self._stopping.is_set():
            raise DaemonError("The node daemon is stopping; nothing was started.")
        if self.current is not None:
            client.send(error_reply("start", request.id, self._busy(self.current), code="busy"))
            return
        if request.attach:
            client.attached = True
        log.info(
            "client command: start %s (by %s, from %s)", request.profile, request.started_by, client
        )
        current = self.begin(request, _Starter(self, client, request))
        self._spawn(client, self._reply_when_begun(client, request, current))

    def begin(self, request: StartRequest, person: Person) -> _Current:
        """Start the session ``request`` asks for, asking ``person``; it runs in a task of its
        own. The caller has checked that no session runs and the daemon is not stopping."""
        radio = self.radio
        session_request = SessionRequest(
            profile=request.profile,
            roles={str(role): value for role, value in request.roles.items()},
            extend=request.extend,
            lift=tuple(rule.upper() for rule in request.lift),
            simulate=radio.simulate,
            simulator=radio.simulator,
            world=radio.world,
            speed=radio.speed,
            started_by=request.started_by,
            clock=radio.clock,
        )
        session = self.service.session(session_request, person, self.ledger)
        began: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        current = _Current(session, request, request.started_by, datetime.now(UTC), began)
        self.current = current
        session.subscribe(functools.partial(self._on_event, current))
        current.task = asyncio.ensure_future(self._run(current))
        self._changed(None)
        return current

    async def _reply_when_begun(
        self, client: _Client, request: StartRequest, current: _Current
    ) -> None:
        refusal = await asyncio.shield(current.began)
        if refusal is None:
            client.send(reply("start", request.id, session=current.status()))
        else:
            client.send(error_reply("start", request.id, refusal))

    async def _run(self, current: _Current) -> None:
        session = current.session
        began = current.began
        try:
            finished = await session.run()
        except RelieveError as exc:
            sentence = " ".join(str(exc).split())
            log.info("start of %s refused: %s", session.request.profile, sentence)
            if not began.done():
                began.set_result(sentence)
            return
        except Exception as exc:
            log.exception("relieve bug: the session ended")
            if not began.done():
                began.set_result(f"relieve bug, the session ended: {exc}")
            return
        finally:
            if self.current is current:
                self.current = None
            self._close_questions()
            self._changed(None)
        if not began.done():
            began.set_result(None)
        self.last = {
            "id": session.record_id,
            "profile": session.request.profile,
            "finished": finished.to_json(),
        }
        off = "every device off" if finished.devices_off else "a device NOT confirmed off"
        quiet = finished.devices_off and finished.recorded and finished.outcome != "aborted"
        log_level = logging.INFO if quiet else logging.WARNING
        log.log(
            log_level,
            "session %s ended: %s%s, %s delivered, %s%s",
            session.record_id,
            finished.outcome,
            f" ({finished.reason})" if finished.reason else "",
            _mmss(finished.delivered_s),
            off,
            "" if finished.recorded else "; the history could not record it in full",
        )

    def _on_event(self, current: _Current, event: Event) -> None:
        current.note(event)
        if isinstance(event, SessionStarted):
            if not current.began.done():
                current.began.set_result(None)
            log.info(
                "session %s started: %s (by %s)",
                current.session.record_id,
                event.profile,
                current.started_by,
            )
        elif isinstance(event, Alarm):
            log.warning(
                "alarm in session %s: %s (%s)",
                current.session.record_id,
                event.reason,
                event.priority,
            )
        line = event.to_json()
        for client in list(self.clients):
            if client.attached:
                client.send(line)
        self._changed(event)

    def _changed(self, event: Event | None) -> None:
        """Tell the observers (the MQTT bridge): an event, or None when the node's state
        changed otherwise (a session began or ended, remote start armed). An observer's
        failure never reaches the session."""
        for observer in list(self.observers):
            try:
                observer(event)
            except Exception:
                log.exception("relieve bug: an observer failed")

    def _control(self, client: _Client, request: ControlRequest) -> None:
        verb = request.request
        log.info("client command: %s (from %s)", verb, client)
        by = f"by {request.by}" + (f" (pid {client.pid})" if client.pid else "")
        if not self.control(verb, by) and verb in ("stop", "emergency-stop"):
            client.send(reply(verb, request.id, stopped=False, message="No session runs."))
            return
        client.send(reply(verb, request.id, stopped=verb in ("stop", "emergency-stop")))

    def control(self, verb: str, by: str) -> bool:
        """Pause, resume, stop or emergency-stop the session (``by``: who, for the reason
        recorded); whether one ran. Stop and emergency stop never fail; a pause or resume
        that cannot be done raises :class:`DaemonError` with the sentence why."""
        current = self.current
        if current is None:
            if verb in ("stop", "emergency-stop"):
                return False
            raise DaemonError("No session is running on this node.")
        session = current.session
        if verb == "stop":
            session.stop(f"stopped {by}")
        elif verb == "emergency-stop":
            session.emergency_stop()
        elif verb == "pause":
            if not session.running:
                raise DaemonError("The session has not begun yet; it can be stopped, not paused.")
            if current.state == "preconditioning":
                raise DaemonError(
                    "The session is still pre-heating or pre-cooling; it can be stopped, not "
                    "paused, before therapy begins."
                )
            if session.paused:
                raise DaemonError("The session is already paused.")
            session.pause(f"paused {by}")
        elif verb == "resume":
            if not session.paused:
                raise DaemonError("The session is not paused.")
            session.resume()
        else:
            raise DaemonError(f"relieve bug: no control {verb!r}")
        return True

    # --- remote start -----------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    def armed_until(self) -> datetime | None:
        """Until when a remote start may begin (None: not armed, or the arming ran out)."""
        armed = self.armed
        if armed is None or time.monotonic() >= armed[1]:
            return None
        return armed[2]

    async def _remote_confirmations(self) -> dict[str, str]:
        """What arming confirms: the precautions of every profile a remote start may run."""
        service = self.service

        def work() -> dict[str, str]:
            out: dict[str, str] = {}
            for profile in self.remote_profiles:
                out.update(service.confirmations(profile))
            return out

        return await asyncio.to_thread(work)

    async def _arm(self, client: _Client, request: ArmRequest) -> None:
        if not self.remote_profiles:
            client.send(
                error_reply(
                    "arm",
                    request.id,
                    "Remote start is off on this node; set remote_start = true and "
                    "start_profiles in config.toml's [mqtt] table to allow it.",
                )
            )
            return
        try:
            needed = await self._remote_confirmations()
        except RelieveError as exc:
            client.send(error_reply("arm", request.id, f"A remote start profile: {exc}"))
            return
        if any(key not in request.confirmed for key in needed):
            answer = error_reply(
                "arm",
                request.id,
                "Confirm these precautions here first, then arm again with them.",
                code="confirm",
            )
            answer["confirm"] = [{"id": key, "text": text} for key, text in needed.items()]
            client.send(answer)
            return
        until = datetime.now(UTC) + timedelta(seconds=ARM_S)
        self.armed = (frozenset(needed), time.monotonic() + ARM_S, until)
        log.info("client command: arm remote start until %s (from %s)", until.isoformat(), client)
        client.send(
            reply(
                "arm",
                request.id,
                armed_until=until.isoformat(timespec="seconds"),
                profiles=list(self.remote_profiles),
            )
        )
        self._changed(None)

    async def start_remote(self, profile: str, source: str) -> str | None:
        """A remote start of ``profile`` (from MQTT): None when the session began, else the
        sentence why not. Only the remote start profiles, only when armed (the precautions
        confirmed at a local client within :data:`ARM_S`), never an allowance override, never
        a health answer; every other rule of a start applies. An arming starts one session."""
        if not self.remote_profiles:
            return "remote start is off on this node (mqtt.remote_start in config.toml)"
        if profile not in self.remote_profiles:
            return f"{profile} is not one of this node's start_profiles"
        if self.stopping:
            return "the node daemon is stopping"
        if self.current is not None:
            return self._busy(self.current)
        armed = self.armed
        if armed is None or time.monotonic() >= armed[1]:
            return (
                "remote start is not armed: confirm the precautions at the node first "
                "(relieve arm), then start within 10 minutes"
            )
        try:
            needed = set(self.service.confirmations(profile))
        except RelieveError as exc:
            return " ".join(str(exc).split())
        if not needed <= armed[0]:
            return "the arming did not confirm this profile's precautions; arm again"
        request = StartRequest(request="start", profile=profile, started_by="mqtt")
        self.armed = None  # one arming, one session
        current = self.begin(request, _ArmedPerson(self, armed[0], source))
        return await asyncio.shield(current.began)

    # --- questions during a session ------------------------------------------------------

    async def ask_attached(self, text: str) -> bool:
        """Ask every attached client; the first answer counts. Nobody attached (or everyone
        gone before answering): no, the session ends (the devices are OFF while it waits)."""
        if not any(client.attached for client in self.clients):
            log.info("nobody is attached to answer %r: no", text)
            return False
        number = next(self._question_numbers)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._questions[number] = future
        self._question_texts[number] = text
        self._broadcast({"question": number, "text": text})
        try:
            return await future
        finally:
            self._questions.pop(number, None)
            self._question_texts.pop(number, None)
            answered = future.result() if future.done() and not future.cancelled() else False
            self._broadcast({"question": number, "closed": True, "yes": answered})

    def _answer(self, client: _Client, request: AnswerRequest) -> None:
        future = self._questions.get(request.question)
        if future is None or future.done():
            raise DaemonError(
                f"There is no open question {request.question}; it was answered or the session "
                "ended."
            )
        log.info(
            "client command: answer %s to question %s (from %s)",
            "yes" if request.yes else "no",
            request.question,
            client,
        )
        future.set_result(request.yes)
        client.send(reply("answer", request.id))

    def _answer_if_nobody_listens(self) -> None:
        if not any(client.attached for client in self.clients):
            self._close_questions()

    def _close_questions(self) -> None:
        for future in self._questions.values():
            if not future.done():
                future.set_result(False)

    def _broadcast(self, line: Mapping[str, Any]) -> None:
        for client in list(self.clients):
            if client.attached:
                client.send(line)


def last_recorded(ledger: Ledger) -> dict[str, Any] | None:
    """The newest session of the last week that ended, as :attr:`NodeDaemon.last` has it
    (its ``finished`` from the record: outcome and delivered seconds); None: none, or the
    history cannot be read (the daemon serves all the same)."""
    try:
        since = ledger.now() - timedelta(days=7)
        ended = [record for record in ledger.sessions(since) if record.outcome != "running"]
    except RelieveError as exc:
        log.warning("the last session could not be read from the history: %s", exc)
        return None
    if not ended:
        return None
    record = ended[0]
    delivered = sum(
        (phase.ended_at - phase.started_at).total_seconds()
        for phase in record.phases
        if phase.ended_at is not None and phase.mode in ("heat", "cold", "massage")
    )
    finished = {"type": "finished", "outcome": record.outcome, "delivered_s": round(delivered, 3)}
    return {"id": record.id, "profile": record.profile, "finished": finished}


def _mmss(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"
