"""The node daemon's test rig: a daemon in-process on a virtual clock, its clients on its socket.

Each :func:`node` owns a simulated world (a heat pad and a cold pad) on a :class:`VirtualClock`,
served through an in-test ``HciServer`` to the sessions the daemon runs, a ledger in the test's
data directory, and a :class:`~controller.daemon.server.NodeDaemon` serving that directory's
socket. Tests talk to it as clients do: JSON lines over the unix socket (:class:`Client`), and
check what a person would see -- the lines a client receives, what the simulated devices
themselves report, what the ledger recorded.

Session time moves only when the rig moves it: :meth:`Node.until` looks for a condition and,
between looks, moves the clock on while a session runs (binding, on the simulator's socket,
needs real time, not clock time). Every wait is bounded, in looks and in real seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.daemon.protocol import LineSplitter, ProtocolError, decode_line
from controller.daemon.server import NodeDaemon, Radio
from controller.ledger import Ledger
from controller.library import ProfileLibrary
from controller.session.service import SessionService
from drivers.core.clock import VirtualClock
from simulators.devices.state import DeviceState
from simulators.hci_server import HciServer
from simulators.world import SimWorld
from tests.session_harness import CONTRAST_MINI, HEAT_MINUTE

PAD = "heat-pad"
COLD_PAD = "cold-pad"
PROBE = "skin-probe"  # under the heat pad; named in the roles, so binding needs no scan
DEVICES = (PAD, COLD_PAD, PROBE)
PADS = (PAD, COLD_PAD)
ROLES = {"heat": "C0:DE:00:00:00:02", "cold": "C0:DE:00:00:00:03", "probe": "C0:DE:00:00:00:07"}
PROFILE = "contrast-mini"  # CONTRAST_MINI, the user's own profile: 2 min pre-heat, heat, cold
HEAT_PROFILE = "heat-long"  # the heat pad alone: pre-heat, then 20 minutes of heat at 40 °C
HEAT_LONG = HEAT_MINUTE.replace("heat-minute", HEAT_PROFILE).replace("minutes = 1", "minutes = 20")
PROFILES = {PROFILE: CONTRAST_MINI, HEAT_PROFILE: HEAT_LONG}
STEP_S = 5.0  # clock seconds moved between looks while a session runs
LOOKS = 2000  # at most this many looks for a condition ...
WAIT_S = 20.0  # ... and at most this many real seconds
REAL_LOOK_S = 0.005  # real seconds between looks when the clock is not moved

Line = dict[str, Any]
Predicate = Callable[[Line], bool]


def start_request(
    *, confirmed: Iterable[str] = ("heat", "cold"), profile: str = PROFILE, **fields: Any
) -> Line:
    """A start of ``profile`` on the rig's pads, its precautions confirmed."""
    return {
        "request": "start",
        "profile": profile,
        "roles": dict(ROLES),
        "confirmed": list(confirmed),
        "started_by": "test",
        **fields,
    }


def heat_start() -> Line:
    """A start of ``heat-long`` on the heat pad (and the probe under it)."""
    roles = {role: ROLES[role] for role in ("heat", "probe")}
    return start_request(profile=HEAT_PROFILE, confirmed=["heat"], roles=roles)


def event(kind: str, **keys: Any) -> Predicate:
    """A line that is the session event ``kind`` with these keys."""
    return lambda line: line.get("type") == kind and all(line.get(k) == v for k, v in keys.items())


def answer_to(verb: str, request_id: int | str | None = None) -> Predicate:
    """The reply to a ``verb`` request (with ``request_id``, when given)."""
    return lambda line: (
        line.get("reply") == verb and (request_id is None or line.get("id") == request_id)
    )


def question(line: Line) -> bool:
    return "question" in line and not line.get("closed")


def output_off(state: DeviceState) -> bool:
    """The simulated device itself says its output is OFF (and, for a pad, not energised)."""
    return not state.output_on and not (state.plate_c is not None and state.energised)


def watch(world: SimWorld) -> list[DeviceState]:
    """Every state the simulated devices publish from now on (a connection, an output ON)."""
    seen: list[DeviceState] = []
    world.register_callback(seen.append)
    return seen


class Client:
    """One connection to the daemon: everything it sends is kept, in order, as JSON objects."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.lines: list[Line] = []
        self.bad: list[bytes] = []  # lines from the daemon that were not one JSON object
        self.eof = False
        self._ids = itertools.count(1)
        self._reading = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        splitter = LineSplitter(1 << 24)
        try:
            while data := await self.reader.read(65536):
                for raw in splitter.feed(data):
                    assert raw is not None
                    try:
                        obj = decode_line(raw)
                    except ProtocolError:
                        self.bad.append(raw)
                        continue
                    if isinstance(obj, dict):
                        self.lines.append(obj)
                    else:
                        self.bad.append(raw)
        except (ConnectionError, OSError):
            pass
        finally:
            self.eof = True

    def send(self, obj: Line) -> None:
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def request(self, verb: str, **fields: Any) -> int:
        """Send a request with a fresh id; returns the id."""
        number = next(self._ids)
        self.send({"request": verb, "id": number, **fields})
        return number

    def find(self, predicate: Predicate, start: int = 0) -> int | None:
        """The index of the first line from ``start`` on that ``predicate`` accepts."""
        for index in range(start, len(self.lines)):
            if predicate(self.lines[index]):
                return index
        return None

    def all(self, predicate: Predicate) -> list[Line]:
        return [line for line in self.lines if predicate(line)]

    def events(self) -> list[Line]:
        return [line for line in self.lines if "type" in line]

    def stop_reading(self) -> None:
        """As a client busy elsewhere: nothing more is read from the socket (the daemon's
        lines pile up in the kernel, then in the daemon) until :meth:`resume_reading`."""
        self._transport().pause_reading()

    def resume_reading(self) -> None:
        self._transport().resume_reading()

    def _transport(self) -> asyncio.Transport:
        transport = self.writer.transport
        assert isinstance(transport, asyncio.Transport)
        return transport

    def kill(self) -> None:
        """As a killed process: the connection is cut, nothing more is said."""
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reading


@dataclass
class Node:
    clock: VirtualClock
    world: SimWorld
    ledger: Ledger
    daemon: NodeDaemon
    data_dir: Path
    task: asyncio.Task[None]
    clients: list[Client] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.data_dir / "relieve.sock"

    @property
    def session_running(self) -> bool:
        """A session runs (its devices bound, its plan under way)."""
        current = self.daemon.current
        return current is not None and current.session.running

    def state(self, key: str) -> DeviceState:
        return self.world.device(key).state

    def off(self, key: str) -> bool:
        return output_off(self.state(key))

    def every_device_off(self) -> bool:
        return all(self.off(key) for key in PADS)

    def outcomes(self) -> list[str]:
        """What the ledger recorded, newest first."""
        return [str(record.outcome) for record in self.ledger.sessions()]

    async def connect(self) -> Client:
        reader, writer = await asyncio.open_unix_connection(str(self.socket), limit=1 << 24)
        client = Client(reader, writer)
        self.clients.append(client)
        return client

    async def until(self, condition: Callable[[], bool], *, move_time: bool = True) -> None:
        """Look until ``condition`` holds; between looks the clock moves on (``STEP_S``) while
        a session runs and ``move_time``, else real time passes (a few milliseconds)."""
        deadline = time.monotonic() + WAIT_S
        for _ in range(LOOKS):
            if condition():
                return
            if time.monotonic() > deadline:
                break
            if move_time and self.session_running:
                await self.clock.advance(STEP_S)
            else:
                await asyncio.sleep(REAL_LOOK_S)
        raise AssertionError("the condition never held")

    async def line(
        self, client: Client, predicate: Predicate, *, after: int = 0, move_time: bool = True
    ) -> Line:
        """The first line from index ``after`` on that ``predicate`` accepts, once it came."""
        await self.until(lambda: client.find(predicate, after) is not None, move_time=move_time)
        index = client.find(predicate, after)
        assert index is not None
        return client.lines[index]

    async def reply(self, client: Client, verb: str, request_id: int) -> Line:
        """The reply to ``client``'s request ``request_id`` (time does not move meanwhile)."""
        return await self.line(client, answer_to(verb, request_id), move_time=False)

    async def ask(self, client: Client, verb: str, **fields: Any) -> Line:
        """Send a request and wait for its reply."""
        return await self.reply(client, verb, client.request(verb, **fields))

    async def start(self, client: Client, **fields: Any) -> Line:
        """Start the rig's contrast session (``fields`` change the request) from ``client`` and
        wait for the start's reply."""
        request = {**start_request(), **fields}
        del request["request"]
        return await self.reply(client, "start", client.request("start", **request))

    async def ended(self, *, client: Client, outcome: str) -> Line:
        """``client`` sees the session finish with ``outcome``; every device is OFF and the
        history recorded the same outcome. The finished event."""
        finished = await self.line(client, event("finished"))
        assert finished["outcome"] == outcome
        assert self.every_device_off()
        assert [r.outcome for r in self.ledger.sessions()] == [outcome]
        return finished

    async def session_ended(self) -> None:
        """Until the daemon has no session any more (moving the clock as needed)."""
        await self.until(lambda: self.daemon.current is None)

    async def stop_serving(self, why: str = "the test ended") -> None:
        """As SIGTERM: the session stopped (every device OFF), then ``serve()`` returns."""
        self.daemon.shutdown(why)
        await self.until(self.task.done)
        self.task.result()


@asynccontextmanager
async def node(
    tmp_path: Path,
    *,
    profiles: Mapping[str, str] = PROFILES,
    devices: Iterable[str] = DEVICES,
    data_dir: Path | None = None,
) -> AsyncIterator[Node]:
    """A node daemon serving ``data_dir`` (``tmp_path / "data"``), with the user's own
    ``profiles`` (name to TOML text) and a simulated world of ``devices``."""
    clock = VirtualClock()
    config = tmp_path / "config"
    (config / "profiles").mkdir(parents=True, exist_ok=True)
    for name, text in profiles.items():
        (config / "profiles" / f"{name}.toml").write_text(text, encoding="utf-8")
    data_dir = data_dir if data_dir is not None else tmp_path / "data"
    world = SimWorld(clock=clock, devices=list(devices))
    if PAD in world and PROBE in world:
        world.place_probe(PAD, PROBE)
    async with world, await HciServer.start(world.link, f"unix:{tmp_path / 'sim.sock'}") as hci:
        with Ledger.open(data_dir, simulated=True) as ledger:
            service = SessionService(ProfileLibrary(config), config_dir=config)
            daemon = NodeDaemon(
                service, ledger, data_dir, Radio(simulator=hci.client_spec, clock=clock)
            )
            task = asyncio.ensure_future(daemon.serve(handle_signals=False))
            ready = asyncio.ensure_future(daemon.ready.wait())
            await asyncio.wait({task, ready}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if task.done():
                task.result()  # serve() failed: say why
            assert daemon.ready.is_set(), "the daemon never listened"
            rig = Node(clock, world, ledger, daemon, data_dir, task)
            try:
                yield rig
            finally:
                # a test that failed mid-session: stop it (every device OFF) before the
                # simulator goes away, so the failure is the test's, not the teardown's
                for client in rig.clients:
                    await client.close()
                if not task.done():
                    daemon.shutdown("the test ended")
                    with contextlib.suppress(AssertionError):
                        await rig.until(task.done)
                if not task.done():
                    task.cancel()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await task
