"""The node daemon's MQTT bridge as Home Assistant (or any MQTT client) sees it.

Each test runs a real mosquitto (tests/mqtt_broker.py), a node daemon in-process on a virtual
clock with simulated pads (tests/daemon_rig.py), and the bridge beside the daemon, as
``relieve serve`` runs them. What is checked is what a user would observe: what is retained on
the broker (status, discovery, state), the events and telemetry, the answers on ``cmd/result``,
what the simulated devices themselves report, and what the ledger recorded.

Session time moves only when a test moves it; MQTT I/O is real, and every wait for it is
bounded (:data:`WITHIN_S`). Commands carry no id, so a test that must know the bridge has read
everything it was sent publishes a *barrier*: an unknown command, which the bridge answers in
the order it reads its messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import socket
import string
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.mqtt.bridge import COMMANDS_BURST, MqttBridge
from controller.mqtt.config import MqttConfig
from controller.mqtt.topics import COMMANDS, MAX_PAYLOAD_BYTES
from tests.daemon_rig import (
    HEAT_PROFILE,
    PAD,
    PROFILE,
    Client,
    Node,
    event,
    heat_start,
    node,
    watch,
)
from tests.mqtt_broker import Broker, BrokerFactory, Collector, Received

pytest_plugins = ["tests.mqtt_broker"]

NODE = "bedroom"
BASE = f"relieve/{NODE}"
STATUS = f"{BASE}/status"
STATE = f"{BASE}/state"
EVENT = f"{BASE}/event"
RESULT = f"{BASE}/cmd/result"
SELECT = f"{BASE}/set/profile"
DISCOVERY = f"homeassistant/device/relieve_{NODE}/config"
HA_STATUS = "homeassistant/status"
WITHIN_S = 10.0  # real seconds any MQTT wait may take
CANCEL_S = 2.0  # real seconds a cancelled bridge may take to end (it says goodbye)
CANCEL_ATTEMPTS = 20
POLL_S = 0.005
REMOTE: dict[str, Any] = {"remote_start": True, "start_profiles": [PROFILE]}
ARM = {"confirmed": ["heat", "cold"]}  # the precautions of contrast-mini (and heat-long)

Json = dict[str, Any]


def command_topic(name: str) -> str:
    return f"{BASE}/cmd/{name}"


def load(message: Received) -> Json:
    obj = json.loads(message.payload)
    assert isinstance(obj, dict), message
    return obj


async def eventually(condition: Callable[[], bool], *, within: float = WITHIN_S) -> None:
    """Until ``condition`` holds (real time passes; the virtual clock does not move)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(POLL_S)


# --- the bridge ----------------------------------------------------------------------------------


def mqtt_config(broker: Broker, **options: Any) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, node=NODE, **options)


def bridge_of(n: Node, config: MqttConfig) -> MqttBridge:
    """A bridge for ``n``'s daemon, as ``relieve serve`` makes it (not running yet)."""
    return MqttBridge(n.daemon, config, version="test", birth_delay_max_s=0.1)


async def until_connected(bridge: MqttBridge, task: asyncio.Task[None]) -> None:
    waiter = asyncio.ensure_future(bridge.connected.wait())
    await asyncio.wait({task, waiter}, timeout=WITHIN_S, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()  # run() ended: say why
    assert bridge.connected.is_set(), "the bridge never connected"


async def cancel(task: asyncio.Task[None], *, within: float = CANCEL_S) -> bool:
    """Cancel the bridge's ``task`` and wait for it to end; whether that one cancel ended it
    within ``within`` seconds. If not, it is cancelled again until it ends (a bridge can
    swallow one: test_a_cancelled_bridge_always_ends), so that no test hangs on it."""
    task.cancel()
    await asyncio.wait({task}, timeout=within)
    ended = task.done()
    for _ in range(100):
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    assert task.done(), "the bridge never ended, cancelled again and again"
    if not task.cancelled() and task.exception() is not None:
        task.result()  # run() failed: say why
    return ended


@asynccontextmanager
async def running(bridge: MqttBridge, *, connect: bool = True) -> AsyncIterator[asyncio.Task[None]]:
    """The bridge running beside the daemon (connected, unless ``connect`` is false); ended
    at the end as ``serve_with_bridge`` ends it: closed, then its task cancelled."""
    task = asyncio.ensure_future(bridge.run())
    try:
        if connect:
            await until_connected(bridge, task)
        yield task
    finally:
        await bridge.close()
        await cancel(task)
        # closed, it no longer hears of the node's changes
        assert all(getattr(o, "__self__", None) is not bridge for o in bridge.daemon.observers)


@asynccontextmanager
async def bridged(n: Node, broker: Broker, **options: Any) -> AsyncIterator[MqttBridge]:
    bridge = bridge_of(n, mqtt_config(broker, **options))
    async with running(bridge):
        yield bridge


# --- Home Assistant's side -----------------------------------------------------------------------


class Peer:
    """Another MQTT client (Home Assistant, ``mosquitto_pub``): it records every message on
    the broker and sends commands."""

    def __init__(self, seen: Collector, client: aiomqtt.Client) -> None:
        self.seen = seen
        self.client = client
        self._barriers = itertools.count(1)

    @property
    def mark(self) -> int:
        """A point in what was received, for :meth:`first` and :meth:`results`."""
        return len(self.seen.messages)

    def on(self, topic: str, after: int = 0) -> list[Received]:
        return [m for m in self.seen.messages[after:] if m.topic == topic]

    async def first(
        self, match: Callable[[Received], bool], *, after: int = 0, within: float = WITHIN_S
    ) -> Received:
        """The first message from ``after`` on that ``match`` accepts, once it came."""
        found: list[Received] = []

        def look() -> bool:
            found[:] = [m for m in self.seen.messages[after:] if match(m)][:1]
            return bool(found)

        await eventually(look, within=within)
        return found[0]

    async def state(self, match: Callable[[Json], bool], *, after: int = 0) -> Json:
        """The first state document from ``after`` on that ``match`` accepts."""
        message = await self.first(lambda m: m.topic == STATE and match(load(m)), after=after)
        return load(message)

    def results(self, after: int = 0) -> list[Json]:
        return [load(m) for m in self.on(RESULT, after)]

    async def result(self, name: str, *, after: int) -> Json:
        """The first answer to command ``name`` from ``after`` on."""
        message = await self.first(
            lambda m: m.topic == RESULT and load(m).get("command") == name, after=after
        )
        return load(message)

    async def send(self, name: str, payload: bytes = b"{}", *, retain: bool = False) -> None:
        await self.client.publish(command_topic(name), payload, qos=1, retain=retain)

    async def command(self, name: str, payload: bytes = b"{}") -> Json:
        """Send command ``name`` and wait for its answer."""
        mark = self.mark
        await self.send(name, payload)
        return await self.result(name, after=mark)

    async def barrier(self) -> None:
        """Until the bridge has read every message sent to it before this call."""
        name = f"barrier~{next(self._barriers)}"  # no fuzzed name has a ~
        answer = await self.command(name)
        assert answer == {"command": name, "accepted": False, "reason": "unknown command"}


@asynccontextmanager
async def peer(broker: Broker, topic_filter: str = "#") -> AsyncIterator[Peer]:
    async with Collector(broker, topic_filter) as seen, broker.client() as client:
        yield Peer(seen, client)


async def retained(broker: Broker) -> dict[str, Received]:
    """What a client that subscribes now gets retained, by topic: a marker published after
    the subscription comes after every retained message (mosquitto keeps the order)."""
    marker = f"test/marker/{time.monotonic_ns()}"
    async with Collector(broker, "#") as seen, broker.client() as client:
        await client.publish(marker, b"marker", qos=1)
        await seen.wait_for(marker, within=WITHIN_S)
        return {m.topic: m for m in seen.messages if m.retain}


# --- the node --------------------------------------------------------------------------------


async def heat_on(n: Node, client: Client) -> None:
    """Until the session's heat phase runs with the heat pad ON."""
    await n.line(client, event("phase", mode="heat"))
    await n.until(lambda: n.state(PAD).output_on)


async def local_session(n: Node, **fields: Any) -> Client:
    """A session started at a local client (the contrast profile, unless ``fields`` change
    it), in its heat phase with the heat pad ON; the starting client, attached."""
    client = await n.connect()
    started = await n.start(client, **fields)
    assert started["ok"] is True, started
    await heat_on(n, client)
    return client


def in_heat(n: Node) -> bool:
    """The node's session is in its heat phase (after time zero)."""
    current = n.daemon.current
    return current is not None and current.status().get("phase", {}).get("mode") == "heat"


async def arm(n: Node) -> None:
    """Remote start armed at a local client (the precautions confirmed there)."""
    client = await n.connect()
    armed = await n.ask(client, "arm", **ARM)
    assert armed["ok"] is True, armed
    await client.close()


def mqtt_commands(n: Node) -> list[tuple[str, bool, str | None, str | None]]:
    """The commands the ledger recorded from MQTT, oldest first: (command, accepted, reason,
    detail)."""
    return [
        (c.command, c.accepted, c.reason, c.detail)
        for c in reversed(n.ledger.commands())
        if c.source == "mqtt"
    ]


class LogLines(logging.Handler):
    """The daemon's log lines (its own handler: the logger may not propagate)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def any(self, text: str) -> bool:
        return any(text in line for line in self.lines)


@contextlib.contextmanager
def daemon_log() -> Iterator[LogLines]:
    logger = logging.getLogger("controller.daemon")
    lines = LogLines()
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)


# --- on connect ----------------------------------------------------------------------------------


async def test_on_connect_the_node_is_online_discovered_and_idle(
    tmp_path: Path, broker: Broker
) -> None:
    async with node(tmp_path) as n, bridged(n, broker) as bridge:
        assert bridge.connects == 1
        kept = await retained(broker)
        assert kept[STATUS].payload == b"online"
        discovery = load(kept[DISCOVERY])
        components = discovery["cmps"]
        assert components["stop"]["command_topic"] == command_topic("stop")
        assert components["state"]["state_topic"] == STATE
        assert components["start"] == {"p": "button"}  # no remote start: no start button
        assert discovery["availability_topic"] == STATUS
        state = load(kept[STATE])
        assert state["state"] == "idle"
        assert state["profile"] is None
        assert state["phase"] is None
        assert state["remote_start"] is False
        assert state["armed_until"] is None


async def test_commands_with_no_session_are_accepted_and_say_so(
    tmp_path: Path, broker: Broker
) -> None:
    async with node(tmp_path) as n, peer(broker) as ha, bridged(n, broker):
        for name in ("stop", "emergency-stop"):
            answer = await ha.command(name)
            assert answer == {"command": name, "accepted": True, "reason": "no session runs"}
        paused = await ha.command("pause")
        assert paused["accepted"] is True
        assert "No session is running" in paused["reason"]
        await eventually(lambda: len(mqtt_commands(n)) == 3)
        assert [(c[0], c[1]) for c in mqtt_commands(n)] == [
            ("stop", True),
            ("emergency-stop", True),
            ("pause", True),
        ]


# --- a session, seen on the broker ---------------------------------------------------------------


async def test_a_local_session_shows_its_events_state_and_telemetry(
    tmp_path: Path, broker: Broker
) -> None:
    async with node(tmp_path) as n, peer(broker) as ha, bridged(n, broker):
        client = await n.connect()
        started = await n.start(client, **heat_start())
        assert started["ok"] is True, started
        await ha.first(lambda m: m.topic == EVENT and load(m)["type"] == "started")
        preheat = await ha.state(lambda s: s["state"] == "preconditioning")
        assert preheat["profile"] == HEAT_PROFILE
        assert preheat["phase"] == "preheat"
        await heat_on(n, client)
        phase = await ha.first(lambda m: m.topic == EVENT and load(m)["type"] == "phase")
        assert not phase.retain
        heat = await ha.state(lambda s: s["state"] == "running" and s["phase"] == "heat")
        assert heat["profile"] == HEAT_PROFILE
        assert heat["devices"]["heat"]["link"] == "linked"
        ends = datetime.fromisoformat(heat["phase_ends"])
        # 20 minutes of heat, at speed 1: it ends about 20 real minutes from now
        left = ends - datetime.now(UTC)
        assert timedelta(minutes=18) < left <= timedelta(minutes=20, seconds=5), heat
        assert datetime.fromisoformat(heat["session_ends"]) >= ends
        kept = await retained(broker)
        assert load(kept[STATE])["state"] == "running"

        # the session runs on at many clock seconds a real second: telemetry stays at
        # about one message a second per role
        mark = ha.mark
        began = time.monotonic()
        while time.monotonic() - began < 3.0:
            await n.clock.advance(1)
            await asyncio.sleep(POLL_S)
        elapsed = time.monotonic() - began
        assert n.daemon.current is not None
        assert (n.daemon.current.session.session_time() or 0) > 100  # much more than 3 s
        for role, key in (("heat", "plate_celsius"), ("probe", "skin_celsius")):
            messages = ha.on(f"{BASE}/telemetry/{role}", mark)
            assert 2 <= len(messages) <= math.ceil(elapsed) + 1, (role, len(messages), elapsed)
            assert not any(m.retain for m in messages)
            reading = load(messages[-1])
            assert isinstance(reading[key], float | int)
            assert not {"type", "t", "role"} & set(reading)
        await client.close()


# --- stop, emergency stop, pause -----------------------------------------------------------------


@pytest.mark.parametrize(("verb", "reason"), [("stop", "MQTT"), ("emergency-stop", "emergency")])
async def test_a_stop_from_mqtt_ends_the_session_with_every_device_off(
    tmp_path: Path, broker: Broker, verb: str, reason: str
) -> None:
    async with node(tmp_path) as n, peer(broker) as ha, bridged(n, broker):
        client = await local_session(n)
        mark = ha.mark
        answer = await ha.command(verb)
        assert answer == {"command": verb, "accepted": True, "reason": None}
        finished = await n.ended(client=client, outcome="stopped")
        assert reason in str(finished["reason"])
        assert n.every_device_off()
        over = await ha.state(lambda s: s["state"] == "idle", after=mark)
        assert over["last_outcome"] == "stopped"
        await eventually(lambda: bool(mqtt_commands(n)))
        assert mqtt_commands(n) == [(verb, True, None, None)]


async def test_every_stop_from_mqtt_is_recorded_with_the_session_it_stopped(
    tmp_path: Path, broker: Broker
) -> None:
    # docs/history.md: every MQTT command is recorded "and the session it concerned" (its
    # example: a stop, accepted, session 7). Three sessions, each stopped from MQTT.
    async with node(tmp_path) as n, peer(broker) as ha, bridged(n, broker):
        stopped_ids = []
        for _ in range(3):
            client = await local_session(n, lift=["H5", "C2"])  # sessions minutes apart
            current = n.daemon.current
            assert current is not None
            stopped_ids.append(current.session.record_id)
            stopped = await ha.command("stop")
            assert stopped["accepted"] is True
            await n.session_ended()
            await client.close()
        await eventually(lambda: len(mqtt_commands(n)) == 3)
        recorded = [(c.command, c.session_id) for c in reversed(n.ledger.commands())]
        assert recorded == [("stop", record_id) for record_id in stopped_ids]


async def test_a_pause_switches_the_pad_off_and_a_garbage_stop_still_stops(
    tmp_path: Path, broker: Broker
) -> None:
    async with node(tmp_path) as n, peer(broker) as ha, bridged(n, broker):
        client = await local_session(n)
        answer = await ha.command("pause")
        assert answer == {"command": "pause", "accepted": True, "reason": None}
        await n.until(lambda: n.off(PAD))
        paused = await ha.state(lambda s: s["state"] == "paused")
        assert paused["phase_ends"] is None  # a held clock ends nothing
        again = await ha.command("pause")
        assert again["accepted"] is True
        assert "already paused" in again["reason"]
        # resume is remote start's: refused here
        resume = await ha.command("resume")
        assert resume["accepted"] is False
        assert "remote start is off" in resume["reason"]
        assert n.off(PAD)

        stop = await ha.command("stop", b'\x00{"please": "stop"\xff')
        assert stop["accepted"] is True
        assert "payload was ignored" in stop["reason"]
        await n.ended(client=client, outcome="stopped")
        await eventually(lambda: len(mqtt_commands(n)) == 4)
        assert [(c[0], c[1]) for c in mqtt_commands(n)] == [
            ("pause", True),
            ("pause", True),
            ("resume", False),
            ("stop", True),
        ]


async def test_a_pause_during_preheat_is_done_or_says_why_not(
    tmp_path: Path, broker: Broker
) -> None:
    # docs/mqtt.md: a pause is acted on; "a pause that cannot be done now ... is still
    # accepted, with the reason". An answer without a reason says it was done.
    async with node(tmp_path) as n, peer(broker) as ha, bridged(n, broker):
        client = await n.connect()
        started = await n.start(client, **heat_start())
        assert started["ok"] is True, started
        await n.until(lambda: n.state(PAD).output_on)  # the pad heats up before time zero
        current = n.daemon.current
        assert current is not None
        assert current.status()["state"] == "preconditioning"
        answer = await ha.command("pause")
        assert answer["accepted"] is True
        assert answer["reason"] is not None or current.session.paused, (
            f"answered {answer}, yet the session is not paused and the pad stays ON"
        )


# --- retained commands ---------------------------------------------------------------------------


async def test_a_retained_start_never_starts_anything(tmp_path: Path, broker: Broker) -> None:
    async with node(tmp_path) as n:
        bridge = bridge_of(n, mqtt_config(broker, **REMOTE))
        await arm(n)  # everything a remote start needs: only the retain flag is wrong
        devices = watch(n.world)
        async with broker.client() as someone:
            await someone.publish(
                command_topic("start"), json.dumps({"profile": PROFILE}), qos=1, retain=True
            )
        async with peer(broker) as ha, running(bridge):
            answer = await ha.result("start", after=0)
            assert answer["accepted"] is False
            assert "retained" in answer["reason"]
            await ha.barrier()
            assert n.daemon.current is None
        assert command_topic("start") not in await retained(broker)
        assert n.daemon.current is None
        assert n.ledger.sessions() == []
        assert not any(state.output_on for state in devices)
        assert n.every_device_off()
        assert n.daemon.armed_until() is not None  # the arming is still there, unused
        assert ("start", False, answer["reason"], None) in mqtt_commands(n)


async def test_a_retained_resume_never_resumes_a_paused_session(
    tmp_path: Path, broker: Broker
) -> None:
    # a resume left retained on the broker while the node was paused: on connect it must be
    # ignored and cleared like a retained start -- the pad stays OFF
    async with node(tmp_path) as n:
        bridge = bridge_of(n, mqtt_config(broker, **REMOTE))
        client = await local_session(n)
        paused = await n.ask(client, "pause")
        assert paused["ok"] is True, paused
        await n.until(lambda: n.off(PAD))
        async with broker.client() as someone:
            await someone.publish(command_topic("resume"), b"{}", qos=1, retain=True)
        devices = watch(n.world)
        async with peer(broker) as ha, running(bridge):
            answer = await ha.result("resume", after=0)
            assert answer["accepted"] is False
            assert "retained" in answer["reason"]
            await ha.barrier()
            answers = [r for r in ha.results() if r["command"] == "resume"]
            current = n.daemon.current
            assert current is not None
            assert current.session.paused, f"the session was resumed; answers: {answers}"
            assert answers == [answer]
        assert not any(state.output_on for state in devices)


async def test_a_cleared_retained_command_is_not_answered_or_recorded_as_another(
    tmp_path: Path, broker: Broker
) -> None:
    # clearing a retained command publishes an empty retained message on the command's topic,
    # which reaches the bridge's own subscription: that is no command anybody sent
    async with node(tmp_path) as n:
        bridge = bridge_of(n, mqtt_config(broker, **REMOTE))
        async with broker.client() as someone:
            await someone.publish(command_topic("start"), b"{}", qos=1, retain=True)
        async with peer(broker) as ha, running(bridge):
            await ha.result("start", after=0)
            await ha.barrier()
            starts = [r for r in ha.results() if r["command"] == "start"]
        await eventually(lambda: bool(mqtt_commands(n)))
        assert len(starts) == 1, starts
        assert [c[0] for c in mqtt_commands(n)] == ["start"], mqtt_commands(n)


async def test_a_retained_profile_selection_is_ignored_cleared_and_not_answered(
    tmp_path: Path, broker: Broker
) -> None:
    # set/profile is never retained (docs/mqtt.md): one left on the broker is cleared, and
    # the echo of that clearing is no selection anybody made
    async with node(tmp_path) as n:
        bridge = bridge_of(n, mqtt_config(broker, remote_start=True, start_profiles=[PROFILE]))
        async with broker.client() as someone:
            await someone.publish(SELECT, b"nope", qos=1, retain=True)
        async with peer(broker) as ha, running(bridge):
            await ha.first(lambda m: m.topic == SELECT and m.payload == b"")  # cleared
            await ha.barrier()
            assert bridge.selected_profile == PROFILE
            selections = [r for r in ha.results() if r["command"] == "select"]
        assert SELECT not in await retained(broker)
        assert selections == []
        assert mqtt_commands(n) == []


# --- remote start --------------------------------------------------------------------------------


async def test_remote_start_is_refused_unless_enabled_armed_and_allowed(
    tmp_path: Path, broker: Broker
) -> None:
    async with node(tmp_path) as n, peer(broker) as ha:
        async with bridged(n, broker):  # remote_start = false, the default
            for name, payload in (("start", {"profile": PROFILE}), ("resume", {})):
                answer = await ha.command(name, json.dumps(payload).encode())
                assert answer["accepted"] is False
                assert "remote start is off" in answer["reason"]
            client = await n.connect()
            refused = await n.ask(client, "arm", **ARM)
            assert refused["ok"] is False
            assert "Remote start is off" in refused["error"]

        async with bridged(n, broker, **REMOTE):
            state = await ha.state(lambda s: s["remote_start"] is True)
            assert state["selected_profile"] == PROFILE
            assert state["armed_until"] is None
            not_armed = await ha.command("start", json.dumps({"profile": PROFILE}).encode())
            assert not_armed["accepted"] is False
            assert "not armed" in not_armed["reason"]
            other = await ha.command("start", json.dumps({"profile": HEAT_PROFILE}).encode())
            assert other["accepted"] is False
            assert f"{HEAT_PROFILE} is not one of this node's start_profiles" in other["reason"]
            assert n.daemon.current is None

            mark = ha.mark
            await arm(n)
            armed = await ha.state(lambda s: s["armed_until"] is not None, after=mark)
            assert datetime.fromisoformat(armed["armed_until"]) > datetime.now(UTC)
            # an arming does not open the other profiles
            other = await ha.command("start", json.dumps({"profile": HEAT_PROFILE}).encode())
            assert other["accepted"] is False
            started = await ha.command("start", json.dumps({"profile": PROFILE}).encode())
            assert started == {"command": "start", "accepted": True, "reason": None}
            current = n.daemon.current
            assert current is not None
            status = await n.ask(client, "status")
            assert status["session"]["started_by"] == "mqtt"
            assert status["session"]["profile"] == PROFILE
            running_state = await ha.state(lambda s: s["profile"] == PROFILE)
            assert running_state["armed_until"] is None  # one arming, one session

            busy = await ha.command("start", json.dumps({"profile": PROFILE}).encode())
            assert busy["accepted"] is False
            assert "already running" in busy["reason"]
            assert n.daemon.current is current

            stopped = await ha.command("stop")
            assert stopped["accepted"] is True
            await n.session_ended()
            assert n.every_device_off()
            again = await ha.command("start", b"{}")
            assert again["accepted"] is False
            assert "not armed" in again["reason"]
            assert n.daemon.current is None
            await eventually(lambda: len(mqtt_commands(n)) == 9)
        starts = [c for c in mqtt_commands(n) if c[0] == "start"]
        assert [(accepted, detail) for _, accepted, _, detail in starts] == [
            (False, None),  # remote start off
            (False, PROFILE),  # not armed
            (False, HEAT_PROFILE),
            (False, HEAT_PROFILE),
            (True, PROFILE),
            (False, PROFILE),  # busy
            (False, PROFILE),  # the arming was used
        ]
        assert [r.outcome for r in n.ledger.sessions()] == ["stopped"]


async def test_a_remote_start_is_recorded_even_when_its_answer_cannot_be_sent(
    tmp_path: Path, broker: Broker
) -> None:
    # docs/mqtt.md: "Every command is recorded in the ledger". A remote start is answered
    # once its session began (the devices bound, ~2 s here); the broker is lost meanwhile:
    # the heat goes on, started from MQTT -- and that start must be in the ledger.
    async with node(tmp_path) as n, bridged(n, broker, **REMOTE):
        await arm(n)
        async with broker.client() as someone:
            await someone.publish(command_topic("start"), json.dumps({"profile": PROFILE}), qos=1)
        await eventually(lambda: n.daemon.current is not None)  # taken: the devices bind
        current = n.daemon.current
        assert current is not None
        assert not current.began.done()
        broker.kill()
        await eventually(current.began.done)
        assert current.began.result() is None  # it began
        assert current.started_by == "mqtt"
        with contextlib.suppress(AssertionError):
            await eventually(lambda: bool(mqtt_commands(n)), within=2.0)
        assert ("start", True, None, PROFILE) in mqtt_commands(n), n.ledger.commands()


async def test_a_start_without_a_profile_runs_the_selected_one(
    tmp_path: Path, broker: Broker
) -> None:
    profiles = [PROFILE, HEAT_PROFILE]
    async with (
        node(tmp_path) as n,
        peer(broker) as ha,
        bridged(n, broker, remote_start=True, start_profiles=profiles),
    ):
        first = await ha.state(lambda s: s["remote_start"] is True)
        assert first["selected_profile"] == PROFILE
        mark = ha.mark
        await ha.client.publish(SELECT, HEAT_PROFILE.encode(), qos=1)
        selected = await ha.state(lambda s: s["selected_profile"] == HEAT_PROFILE, after=mark)
        assert selected["state"] == "idle"
        mark = ha.mark
        await ha.client.publish(SELECT, b"nope", qos=1)
        refused = await ha.result("select", after=mark)
        assert refused["accepted"] is False
        assert "not one of this node's start_profiles" in refused["reason"]

        await arm(n)
        started = await ha.command("start", b"{}")
        assert started == {"command": "start", "accepted": True, "reason": None}
        current = n.daemon.current
        assert current is not None
        assert current.session.request.profile == HEAT_PROFILE
        await ha.state(lambda s: s["profile"] == HEAT_PROFILE and s["state"] != "idle")
        # with remote start, a paused session may be resumed from MQTT too
        await n.until(lambda: in_heat(n) and n.state(PAD).output_on)
        paused = await ha.command("pause")
        assert paused == {"command": "pause", "accepted": True, "reason": None}
        await n.until(lambda: n.off(PAD))
        resumed = await ha.command("resume")
        assert resumed == {"command": "resume", "accepted": True, "reason": None}
        await n.until(lambda: n.state(PAD).output_on)
        not_paused = await ha.command("resume")
        assert not_paused["accepted"] is False
        assert "not paused" in not_paused["reason"]
        await ha.command("stop")
        await n.session_ended()
        assert n.every_device_off()


# --- reaching the broker: a password, TLS --------------------------------------------------------


async def refused_to_connect(n: Node, config: MqttConfig, lines: LogLines, why: str) -> None:
    """A bridge with ``config`` never connects, says ``why`` in the log, and the daemon goes
    on serving its clients."""
    bridge = bridge_of(n, config)
    async with running(bridge, connect=False) as task:
        await eventually(lambda: lines.any(why))
        assert not task.done()  # it keeps trying, with a backoff
        assert bridge.connects == 0
        assert not bridge.connected.is_set()
        client = await n.connect()
        status = await n.ask(client, "status")
        assert status["ok"] is True, status
        assert status["session"] is None
        await client.close()


async def test_a_password_from_a_private_file(
    tmp_path: Path, broker_factory: BrokerFactory
) -> None:
    broker = broker_factory(password=("relieve", "s3cret word"))
    right = tmp_path / "mqtt-password"
    right.write_text("s3cret word\n", encoding="utf-8")
    right.chmod(0o600)
    wrong = tmp_path / "wrong-password"
    wrong.write_text("guess\n", encoding="utf-8")
    wrong.chmod(0o600)
    async with node(tmp_path) as n:
        with daemon_log() as lines:
            async with bridged(n, broker, username="relieve", password_file=str(right)) as bridge:
                assert bridge.connects == 1
                assert (await retained(broker))[STATUS].payload == b"online"
            config = mqtt_config(broker, username="relieve", password_file=str(wrong))
            await refused_to_connect(
                n, config, lines, "the broker refused the username or password of user 'relieve'"
            )
            assert not lines.any("guess")  # the password is never logged


async def test_tls_with_the_brokers_ca_and_not_with_another(
    tmp_path: Path, broker_factory: BrokerFactory
) -> None:
    broker = broker_factory(tls=True)
    assert broker.ca_file is not None
    assert broker.wrong_ca_file is not None
    async with node(tmp_path) as n:
        with daemon_log() as lines:
            async with bridged(n, broker, tls=True, ca_file=str(broker.ca_file)) as bridge:
                assert bridge.connects == 1
                assert (await retained(broker))[STATUS].payload == b"online"
            config = mqtt_config(broker, tls=True, ca_file=str(broker.wrong_ca_file))
            await refused_to_connect(
                n, config, lines, f"could not be verified with {broker.wrong_ca_file}"
            )


# --- a broker lost, Home Assistant's birth, the exit ---------------------------------------------


async def test_a_lost_broker_changes_nothing_and_the_bridge_publishes_again(
    tmp_path: Path, broker: Broker
) -> None:
    async with node(tmp_path) as n, bridged(n, broker) as bridge:
        client = await local_session(n)
        broker.kill()  # no goodbye: the heat phase goes on without MQTT
        await eventually(lambda: not bridge.connected.is_set())
        await n.ended(client=client, outcome="completed")
        assert n.every_device_off()
        await asyncio.to_thread(broker.start)  # the same port; nothing retained survived
        await eventually(bridge.connected.is_set)
        assert bridge.connects == 2
        kept = await retained(broker)
        assert kept[STATUS].payload == b"online"
        assert load(kept[DISCOVERY])["cmps"]
        state = load(kept[STATE])
        assert state["state"] == "idle"
        assert state["last_outcome"] == "completed"
        assert state["problem"] is False
        # today's minutes, read after the session (2 minutes of heat, 2 of cold)
        assert state["exposure_today"]["heat_min"] >= 1.9, state
        assert state["exposure_today"]["cold_min"] >= 1.9, state


async def test_home_assistants_birth_brings_the_discovery_again(
    tmp_path: Path, broker: Broker
) -> None:
    async with node(tmp_path) as n, bridged(n, broker), peer(broker) as ha:
        first = await ha.first(lambda m: m.topic == DISCOVERY)
        assert first.retain
        mark = ha.mark
        await ha.client.publish(HA_STATUS, b"online", qos=1)
        again = await ha.first(lambda m: m.topic == DISCOVERY, after=mark)
        assert load(again) == load(first)
        await ha.first(lambda m: m.topic == STATUS and m.payload == b"online", after=mark)
        await ha.first(lambda m: m.topic == STATE, after=mark)


def cut_connection(bridge: MqttBridge) -> None:
    """As if the bridge's process died: its TCP connection ends, with no DISCONNECT."""
    client = bridge._client
    assert client is not None
    sock = client._client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)


async def test_a_clean_exit_says_offline_and_so_does_the_will(
    tmp_path: Path, broker: Broker
) -> None:
    async with node(tmp_path) as n:
        async with bridged(n, broker):
            assert (await retained(broker))[STATUS].payload == b"online"
        kept = await retained(broker)
        assert kept[STATUS].payload == b"offline"
        assert load(kept[STATE])["state"] == "idle"

        bridge = bridge_of(n, mqtt_config(broker))
        async with running(bridge) as task, peer(broker) as ha:
            await ha.first(lambda m: m.topic == STATUS and m.payload == b"online")
            mark = ha.mark
            cut_connection(bridge)
            await eventually(lambda: not bridge.connected.is_set())
            task.cancel()  # before it connects again: it is gone, it never said offline
            will = await ha.first(lambda m: m.topic == STATUS, after=mark)
            assert will.payload == b"offline"
        assert bridge.connects == 1
        assert (await retained(broker))[STATUS].payload == b"offline"


async def test_a_cancelled_bridge_always_ends(tmp_path: Path, broker: Broker) -> None:
    # serve_with_bridge ends the bridge as the daemon stops: close(), cancel its task, and
    # wait for that task without a bound. A bridge that goes on after the cancel keeps
    # `relieve serve` from ever exiting. Here the node is busy (a session runs, its state
    # changes again and again) while bridges are ended, one after the other.
    async with node(tmp_path) as n:
        client = await local_session(n)
        for attempt in range(CANCEL_ATTEMPTS):
            bridge = bridge_of(n, mqtt_config(broker))
            task = asyncio.ensure_future(bridge.run())
            try:
                await until_connected(bridge, task)
                for _ in range(100):
                    for observer in list(n.daemon.observers):
                        observer(None)  # the node changed: the bridge publishes its state
                await bridge.close()
                for _ in range(attempt % 13):
                    await asyncio.sleep(0)  # the cancel at another point of the publishing
                ended = await cancel(task, within=1.0)
            finally:
                await cancel(task)
            # (seen on Python 3.11: a publish whose acknowledgement came in as the cancel
            # did swallows the cancel, and the bridge's send loop waits for more to send)
            assert ended, f"bridge {attempt + 1} went on after it was cancelled"
        await client.close()


# --- garbage on the command topics ---------------------------------------------------------------

# An example costs about one round trip through the broker whatever it sends (mosquitto's
# small writes wait on the client's delayed ACKs): fewer examples, several commands each.
FUZZ_EXAMPLES = 100
FUZZ_MIN_SENT = 5  # commands an example sends at least: 500 and more in all

_LEAF = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16)
_JSON = st.recursive(
    _LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


def _dumps(obj: object) -> bytes:
    """JSON as a sender may write it: NaN and Infinity included, lone surrogates as they are."""
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _padded(size: int) -> bytes:
    """A start of ``size`` bytes (at least 15), its profile a long run of ``a``."""
    return b'{"profile": "' + b"a" * (size - 15) + b'"}'


_PAYLOADS = st.one_of(
    st.binary(max_size=80),
    _JSON.map(_dumps),
    st.fixed_dictionaries(
        {"profile": _LEAF | st.sampled_from([PROFILE, HEAT_PROFILE, "nope", "", "Contrast-Mini"])},
        optional={"extra": _LEAF},
    ).map(_dumps),
    st.text(max_size=40).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"",
            b"{}",
            b" {}\n",
            b"NaN",
            b"-Infinity",
            b'{"profile": NaN}',
            b'{"profile": Infinity}',
            b"null",
            b"[]",
            b'"{}"',
            b"\xef\xbb\xbf{}",
            b"[" * 1000,
            b'{"profile": "contrast-mini"}',
            b'{"profile": "contrast-mini", "profile": "heat-long"}',
        ]
    ),
    st.integers(MAX_PAYLOAD_BYTES - 2, MAX_PAYLOAD_BYTES * 3).map(_padded),
)
_UNKNOWN = st.text(alphabet=string.ascii_letters + string.digits + "-_.éß日本", max_size=40).filter(
    lambda name: name not in (*COMMANDS, "result")
)
_SENT = st.lists(
    st.tuples(st.sampled_from(["start", "resume"]) | _UNKNOWN, _PAYLOADS),
    min_size=FUZZ_MIN_SENT,
    max_size=12,
)


async def _fuzz_once(
    n: Node, bridge: MqttBridge, ha: Peer, record_id: int | None, sent: list[tuple[str, bytes]]
) -> None:
    """Send ``sent``, then check: one answer each, every one a refusal; the bridge still
    connected (never reconnected); the session runs on, in its heat, unpaused, the pad ON."""
    mark = ha.mark
    for name, payload in sent:
        await ha.send(name, payload)
    await ha.barrier()
    await eventually(lambda: len(ha.results(mark)) >= len(sent) + 1)
    answers = [r for r in ha.results(mark) if not r["command"].startswith("barrier~")]
    assert Counter(a["command"] for a in answers) == Counter(name[:32] for name, _ in sent)
    for answer in answers:
        assert answer["accepted"] is False, answer
        assert isinstance(answer["reason"], str), answer
        assert answer["reason"].strip(), answer
    assert bridge.connects == 1
    assert bridge.connected.is_set()
    current = n.daemon.current
    assert current is not None, "the session ended"
    assert current.session.record_id == record_id
    assert not current.session.paused
    assert current.status()["state"] == "running"
    assert current.status()["phase"]["mode"] == "heat"
    assert n.state(PAD).output_on
    await n.clock.advance(1)  # time goes on between examples


async def _cancel_all(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_garbage_commands_never_change_the_running_session(tmp_path: Path, broker: Broker) -> None:
    # one daemon, one bridge and one session for every example: the loop is this test's own,
    # and each example runs on it (hypothesis calls the sync function below)
    loop = asyncio.new_event_loop()
    stack = contextlib.ExitStack()
    astack = contextlib.AsyncExitStack()
    sent: list[tuple[str, bytes]] = []
    try:
        lines = stack.enter_context(daemon_log())
        n = loop.run_until_complete(astack.enter_async_context(node(tmp_path)))
        ha = loop.run_until_complete(astack.enter_async_context(peer(broker)))
        bridge = loop.run_until_complete(astack.enter_async_context(bridged(n, broker, **REMOTE)))
        loop.run_until_complete(local_session(n, **heat_start()))
        current = n.daemon.current
        assert current is not None
        record_id = current.session.record_id
        first_failing: list[list[tuple[str, bytes]]] = []

        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            report_multiple_bugs=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(commands=_SENT)
        def garbage_changes_nothing(commands: list[tuple[str, bytes]]) -> None:
            sent.extend(commands)
            try:
                loop.run_until_complete(_fuzz_once(n, bridge, ha, record_id, commands))
            except AssertionError:
                if not first_failing:
                    first_failing.append(commands)
                raise

        try:
            garbage_changes_nothing()
        except AssertionError as exc:
            # every example shares the bridge and the session: the example hypothesis shrinks
            # to may only show the damage an earlier one did; this one did it first
            raise AssertionError(f"first failing commands: {first_failing[:1]!r}") from exc
        assert len(sent) >= FUZZ_EXAMPLES * FUZZ_MIN_SENT
        assert any(len(payload) > MAX_PAYLOAD_BYTES for _, payload in sent)
        # the starts and resumes are in the ledger, refused (unknown commands are not); in a
        # flood beyond the bridge's rate they are no longer recorded one by one, and the log
        # says so -- a flood must not fill the disk
        sent_commands = sum(1 for name, _ in sent if name in COMMANDS)
        loop.run_until_complete(
            eventually(lambda: len(mqtt_commands(n)) >= min(sent_commands, COMMANDS_BURST))
        )
        records = len(mqtt_commands(n))
        assert records <= sent_commands
        if records < sent_commands:
            assert lines.any("a flood of commands")
        assert not any(accepted for _, accepted, _, _ in mqtt_commands(n))
        assert not lines.any("relieve bug")
    finally:
        loop.run_until_complete(astack.aclose())
        stack.close()
        loop.run_until_complete(_cancel_all(asyncio.all_tasks(loop)))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def test_a_flood_of_starts_is_refused_beyond_the_rate_and_a_stop_in_it_still_stops(
    tmp_path: Path, broker: Broker
) -> None:
    async with node(tmp_path) as n, peer(broker) as ha, bridged(n, broker):
        client = await local_session(n)
        mark = ha.mark
        flood = 60
        for _ in range(flood):
            await ha.send("start", b'{"profile": "contrast-mini"}')
        await ha.send("stop")
        answer = await ha.result("stop", after=mark)
        assert answer == {"command": "stop", "accepted": True, "reason": None}
        await n.ended(client=client, outcome="stopped")
        await eventually(lambda: len(ha.results(mark)) >= flood + 1)
        starts = [r for r in ha.results(mark) if r["command"] == "start"]
        assert len(starts) == flood
        assert not any(r["accepted"] for r in starts)
        limited = [r for r in starts if str(r["reason"]).startswith("too many commands")]
        assert len(limited) >= flood - COMMANDS_BURST - 5  # the burst, and a few refilled
        # recorded one by one only up to the rate: the stop among them
        await eventually(lambda: any(c[0] == "stop" for c in mqtt_commands(n)))
        assert len(mqtt_commands(n)) <= COMMANDS_BURST + 5
