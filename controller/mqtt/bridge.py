"""The MQTT bridge of the node daemon: the node on a broker, and commands from it.

The bridge lives in the daemon (one process per node talks MQTT) and is never part of the
safety loop: it observes the daemon and asks it, as a client does; a broker that goes away
changes nothing about a running session (the supervisor and the device leases go on), and the
bridge reconnects with a capped, jittered backoff and publishes everything again.

On every connect (and when Home Assistant's status topic says ``online``) it publishes the
Home Assistant discovery, the retained state and ``online``; the will is ``offline``, and the
bridge publishes ``offline`` itself before a clean exit (a will does not fire then).

Commands (``relieve/<node>/cmd/<name>``) are answered on ``cmd/result``. Stop, emergency stop
and pause are always accepted and acted on, in every state and whatever their payload (each
only switches outputs OFF). Start and resume only with ``remote_start = true``; a start only
of a profile in ``start_profiles``, and only when remote start was armed at a local client
(the precautions confirmed there within 10 minutes). A command that arrives retained is
ignored, answered and cleared, so a start left on a broker never switches a heater on after a
reconnect. Payloads are strict and at most 1 KiB; anything else is answered
``accepted: false``. Every command is recorded in the ledger with its source.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

from controller.daemon.server import DaemonError, NodeDaemon, TokenBucket
from controller.ledger.allowances import MODALITIES
from controller.mqtt.config import MqttConfig, read_password
from controller.mqtt.connect import client_options, describe_mqtt_error
from controller.mqtt.discovery import discovery_payload, discovery_topic
from controller.mqtt.state import node_state
from controller.mqtt.topics import CommandError, NodeTopics, StartPayload, decode_command
from controller.session.events import Event, Telemetry
from profiles.errors import RelieveError

__all__ = ["BACKOFF_MAX_S", "MqttBridge", "serve_with_bridge"]

log = logging.getLogger("controller.daemon")

BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 30.0
TELEMETRY_MIN_S = 1.0  # at most one telemetry message a second per role
BIRTH_DELAY_MAX_S = 3.0  # republish after Home Assistant's birth, within this random delay
LOOP_END_S = 2.0  # real seconds a cancelled send or receive loop has to end
BRIDGE_END_S = 5.0  # ... and the bridge, at the daemon's exit
OUTGOING_MAX = 1000  # messages waiting for the broker; while it is full, new ones are dropped
_JITTER = random.SystemRandom()  # backoff jitter and the birth delay (not secrets, but no S311)
ALWAYS = ("stop", "emergency-stop", "pause")
# A flood of commands (anyone with the broker's write access can send one) must neither keep
# the node busy nor fill the disk: start, resume and profile choices beyond this rate are
# refused, and commands beyond it are not recorded one by one (the log counts them). Stop,
# emergency stop and pause are never limited.
COMMANDS_PER_S = 5.0
COMMANDS_BURST = 20.0
FLOOD_LOG_S = 10.0  # at most one log line this often about a flood
RETAINED = "a retained command is ignored (and cleared); publish commands without the retain flag"
REMOTE_OFF = "remote start is off on this node (mqtt.remote_start in config.toml)"


class MqttBridge:
    """Publishes ``daemon``'s node on the broker of ``config`` and takes its commands."""

    def __init__(
        self,
        daemon: NodeDaemon,
        config: MqttConfig,
        *,
        version: str,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        birth_delay_max_s: float = BIRTH_DELAY_MAX_S,
    ) -> None:
        self.daemon = daemon
        self.config = config
        self.version = version
        self.topics = NodeTopics(config.node)
        self.now = now
        self.birth_delay_max_s = birth_delay_max_s
        self.connected = asyncio.Event()
        self.connects = 0  # how many times it connected (tests, the log)
        self.selected_profile: str | None = (
            config.start_profiles[0] if config.remote_start and config.start_profiles else None
        )
        self._client: aiomqtt.Client | None = None
        self._out: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(OUTGOING_MAX)
        self._telemetry_at: dict[str, float] = {}
        self._telemetry_pending: dict[str, Telemetry] = {}
        self._telemetry_timer: dict[str, asyncio.TimerHandle] = {}
        self._exposure: dict[str, float] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._clearing: set[str] = set()  # command topics whose retained message we cleared
        self._limit = TokenBucket(COMMANDS_PER_S, COMMANDS_BURST)  # start, resume, select
        # ledger records: a flood of one kind never keeps a stop out of the history
        self._recording = {
            always: TokenBucket(COMMANDS_PER_S, COMMANDS_BURST) for always in (True, False)
        }
        self._unrecorded = 0
        self._flood_logged = 0.0
        daemon.remote_profiles = tuple(config.start_profiles) if config.remote_start else ()
        daemon.observers.append(self._observe)

    # --- the connection loop -------------------------------------------------------------

    async def run(self) -> None:
        """Connect, publish, take commands; reconnect after any loss. Runs until cancelled."""
        password = read_password(self.config)  # a bad password file: one sentence, no bridge
        await self._refresh_exposure()
        backoff = BACKOFF_MIN_S
        while not self._closing:
            will = aiomqtt.Will(self.topics.status, b"offline", qos=1, retain=True)
            options = client_options(
                self.config,
                identifier=f"relieve-{self.config.node}-{secrets.token_hex(4)}",
                will=will,
                password=password,
            )
            try:
                async with aiomqtt.Client(**options) as client:
                    self._client = client
                    self.connects += 1
                    backoff = BACKOFF_MIN_S
                    log.info("MQTT: connected to %s:%s", self.config.host, self.config.port)
                    await self._on_connect(client)
                    self.connected.set()
                    await self._serve(client)
            except aiomqtt.MqttError as exc:
                if self._closing:
                    break
                log.warning(
                    "MQTT: %s; trying again in %.0f s (sessions go on)",
                    describe_mqtt_error(exc, self.config),
                    backoff,
                )
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(backoff * _JITTER.uniform(0.8, 1.2))
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def close(self) -> None:
        """A clean exit: the last state and ``offline`` published, then disconnect."""
        self._closing = True
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(self._publish_state(client), 2)
                await asyncio.wait_for(
                    client.publish(self.topics.status, b"offline", qos=1, retain=True), 2
                )
        for task in list(self._tasks):
            task.cancel()
        if self._observe in self.daemon.observers:
            self.daemon.observers.remove(self._observe)

    async def _on_connect(self, client: aiomqtt.Client) -> None:
        await client.subscribe(self.topics.commands, qos=1)
        await client.subscribe(self.topics.select_profile, qos=1)
        await client.subscribe(f"{self.config.discovery_prefix}/status", qos=1)
        await self._publish_all(client)

    async def _publish_all(self, client: aiomqtt.Client) -> None:
        """Discovery, state and ``online``: on every connect and Home Assistant's birth."""
        payload = discovery_payload(
            self.config.node,
            version=self.version,
            remote_start=self.config.remote_start,
            start_profiles=self.config.start_profiles,
        )
        await client.publish(
            discovery_topic(self.config.node, self.config.discovery_prefix),
            json.dumps(payload).encode(),
            qos=1,
            retain=True,
        )
        await self._publish_state(client)
        await client.publish(self.topics.status, b"online", qos=1, retain=True)

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        state = node_state(
            self.daemon.status(),
            now=self.now(),
            exposure_today=self._exposure,
            selected_profile=self.selected_profile,
            remote_start=bool(self.daemon.remote_profiles),
            armed_until=self.daemon.armed_until(),
        )
        await client.publish(self.topics.state, json.dumps(state).encode(), qos=1, retain=True)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Send and receive until either fails (the connection is then made again)."""
        loops = {
            asyncio.ensure_future(self._send_loop(client)),
            asyncio.ensure_future(self._receive_loop(client)),
        }
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in loops:
                task.cancel()
            # bounded: a loop that swallowed its cancel must not hold the bridge (or the exit)
            await asyncio.wait(loops, timeout=LOOP_END_S)
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error  # an MqttError: reconnect
        raise aiomqtt.MqttError("the connection ended")

    async def _receive_loop(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                await self._message(client, message)
            except aiomqtt.MqttError:
                raise
            except Exception:  # a bug must not take the bridge (or the daemon) down
                log.exception("relieve bug: MQTT message on %s", message.topic)

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        task = asyncio.current_task()
        # a cancel that a publish swallowed (asyncio.wait_for on Python 3.11) still ends it
        while task is None or not task.cancelling():
            topic, payload, retain = await self._out.get()
            if topic == self.topics.state:
                await self._publish_state(client)  # the state as it is now, not as queued
            else:
                qos = 0 if "/telemetry/" in topic else 1
                await client.publish(topic, payload, qos=qos, retain=retain)

    # --- from the daemon -------------------------------------------------------------------

    def _observe(self, event: Event | None) -> None:
        """Every event of the node's session, or None when the node's state changed."""
        if isinstance(event, Telemetry):
            self._telemetry(event)
            return
        if event is not None:
            self._queue(self.topics.event, json.dumps(event.to_json()).encode())
        if event is None or event.type in ("started", "phase", "state", "alarm", "finished"):
            self._queue(self.topics.state, b"")
        if event is None and self.daemon.current is None:
            self._spawn(self._refresh_exposure())  # a session ended: today's minutes changed

    def _telemetry(self, event: Telemetry) -> None:
        role = event.role
        self._telemetry_pending[role] = event
        wait = self._telemetry_at.get(role, 0.0) + TELEMETRY_MIN_S - time.monotonic()
        if wait <= 0:
            self._flush_telemetry(role)
        elif role not in self._telemetry_timer:
            loop = asyncio.get_running_loop()
            self._telemetry_timer[role] = loop.call_later(wait, self._flush_telemetry, role)

    def _flush_telemetry(self, role: str) -> None:
        self._telemetry_timer.pop(role, None)
        event = self._telemetry_pending.pop(role, None)
        if event is None:
            return
        self._telemetry_at[role] = time.monotonic()
        payload = {
            key: value for key, value in event.to_json().items() if key not in ("type", "t", "role")
        }
        self._queue(self.topics.telemetry(role), json.dumps(payload).encode())

    def _queue(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        if self._client is None:
            return  # not connected: nothing is kept; the state is published again on connect
        try:
            self._out.put_nowait((topic, payload, retain))
        except asyncio.QueueFull:
            log.warning("MQTT: the broker is too slow; a message was dropped")

    async def _refresh_exposure(self) -> None:
        """Today's minutes by modality, read off the event loop (only between sessions)."""
        ledger = self.daemon.ledger
        try:
            exposure = await asyncio.to_thread(ledger.exposure)
        except RelieveError as exc:
            log.warning("MQTT: today's exposure could not be read: %s", exc)
            return
        self._exposure = {f"{m}_min": round(exposure.of(m) / 60, 1) for m in MODALITIES}
        self._queue(self.topics.state, b"")

    # --- from the broker ---------------------------------------------------------------------

    async def _message(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        raw = message.payload
        payload = raw if isinstance(raw, bytes) else str(raw if raw is not None else "").encode()
        if topic == f"{self.config.discovery_prefix}/status":
            if payload.strip() == b"online":
                self._spawn(self._after_birth(client))
            return
        if topic == self.topics.select_profile:
            await self._select(client, payload, retained=message.retain)
            return
        name = self.topics.command_name(topic)
        if name is None:
            if topic.startswith(f"{self.topics.base}/cmd/") and topic != self.topics.result:
                unknown = topic.rsplit("/", 1)[-1][:32]
                await self._answer(client, unknown, False, "unknown command", record=False)
            return
        if name not in ALWAYS and not message.retain and not self._limit.take():
            why = f"too many commands; at most {COMMANDS_PER_S:g} a second"
            await self._answer(client, name, False, why)
            return
        if message.retain:
            if payload:  # ours to clear: a retained command must never act later
                self._clearing.add(topic)
                await client.publish(topic, b"", qos=1, retain=True)
                await self._answer(client, name, False, RETAINED)
            return
        if not payload and topic in self._clearing:
            self._clearing.discard(topic)  # the echo of our own clearing: no command
            return
        try:
            command: object = decode_command(name, payload)
        except CommandError as exc:
            if name not in ALWAYS:
                await self._answer(client, name, False, str(exc))
                return
            # a stop, an emergency stop or a pause is honoured whatever came with it: each
            # only ever switches outputs OFF (the answer says the payload was ignored)
            command = f"the payload was ignored ({exc})"
        await self._command(client, name, command)

    async def _after_birth(self, client: aiomqtt.Client) -> None:
        await asyncio.sleep(_JITTER.uniform(0, self.birth_delay_max_s))
        with contextlib.suppress(aiomqtt.MqttError):
            await self._publish_all(client)

    async def _command(self, client: aiomqtt.Client, name: str, command: object) -> None:
        by = "by MQTT"
        if name in ALWAYS:
            notes = [command] if isinstance(command, str) else []
            try:
                if not self.daemon.control(name, by):
                    notes.append("no session runs")
            except DaemonError as exc:  # a pause that cannot be done now: still accepted
                notes.append(str(exc))
            await self._answer(client, name, True, "; ".join(notes) or None)
            return
        if not self.daemon.remote_profiles:
            await self._answer(client, name, False, REMOTE_OFF)
            return
        if name == "resume":
            try:
                self.daemon.control("resume", by)
            except DaemonError as exc:
                await self._answer(client, name, False, str(exc))
                return
            await self._answer(client, name, True, None)
            return
        chosen = command.profile if isinstance(command, StartPayload) else None
        profile = chosen if chosen is not None else self.selected_profile
        if profile is None:
            await self._answer(client, name, False, "no profile given or selected")
            return
        self._spawn(self._start(client, profile))

    async def _start(self, client: aiomqtt.Client, profile: str) -> None:
        refusal = await self.daemon.start_remote(profile, "MQTT")
        with contextlib.suppress(aiomqtt.MqttError):
            await self._answer(client, "start", refusal is None, refusal, detail=profile)

    async def _select(self, client: aiomqtt.Client, payload: bytes, *, retained: bool) -> None:
        text = payload.decode("utf-8", "replace").strip()[:64]
        if retained:
            if payload:  # cleared, as a retained command is; its echo is no selection
                self._clearing.add(self.topics.select_profile)
                await client.publish(self.topics.select_profile, b"", qos=1, retain=True)
            return
        if not payload and self.topics.select_profile in self._clearing:
            self._clearing.discard(self.topics.select_profile)
            return
        if not self._limit.take():
            why = f"too many commands; at most {COMMANDS_PER_S:g} a second"
            await self._answer(client, "select", False, why)
            return
        if text not in self.daemon.remote_profiles:
            why = f"{text!r} is not one of this node's start_profiles"
            await self._answer(client, "select", False, why)
            return
        self.selected_profile = text
        await self._publish_state(client)

    async def _answer(
        self,
        client: aiomqtt.Client,
        command: str,
        accepted: bool,
        reason: str | None,
        *,
        detail: str | None = None,
        record: bool = True,
    ) -> None:
        current = self.daemon.current  # the session it concerned: taken now, not when written
        session_id = current.session.record_id if current is not None else None
        result = {"command": command, "accepted": accepted, "reason": reason}
        verdict = "accepted" if accepted else "refused"
        log.info("MQTT command: %s %s%s", command, verdict, f" ({reason})" if reason else "")
        bucket = self._recording[command in ALWAYS]
        if record and bucket.take():  # first: the record stands even if the answer is lost
            self._spawn(self._record(command, accepted, reason, detail, session_id))
        elif record:
            self._unrecorded += 1
            if time.monotonic() - self._flood_logged >= FLOOD_LOG_S:
                self._flood_logged = time.monotonic()
                log.warning(
                    "MQTT: a flood of commands; %d not recorded one by one so far",
                    self._unrecorded,
                )
        await client.publish(self.topics.result, json.dumps(result).encode(), qos=1)

    async def _record(
        self,
        command: str,
        accepted: bool,
        reason: str | None,
        detail: str | None,
        session_id: int | None,
    ) -> None:
        try:
            await asyncio.to_thread(
                self.daemon.ledger.record_command,
                command,
                source="mqtt",
                accepted=accepted,
                reason=reason,
                detail=detail,
                session_id=session_id,
            )
        except RelieveError as exc:
            log.warning("MQTT: the command could not be recorded: %s", exc)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def serve_with_bridge(
    daemon: NodeDaemon, bridge: MqttBridge | None, *, settings: Path | None = None
) -> None:
    """The daemon, and its bridge beside it once it serves; when the daemon stops (its
    session ended, every device OFF), the bridge publishes the last state and ``offline``,
    then disconnects. ``settings``: the settings file, for the log."""

    async def bridge_when_serving() -> None:
        await daemon.ready.wait()  # not before the node is ours (a second daemon is refused)
        if bridge is None:
            log.info("no [mqtt] table in %s: running without MQTT", settings)
            return
        try:
            await bridge.run()
        except RelieveError as exc:  # (the settings were checked before the daemon started)
            log.error("MQTT is off: %s", exc)  # noqa: TRY400 - a sentence, not a traceback
        except Exception:
            log.exception("relieve bug: the MQTT bridge stopped; the node goes on without it")

    bridging = asyncio.ensure_future(bridge_when_serving())
    try:
        await daemon.serve()
    finally:
        if bridge is not None:
            await bridge.close()
        bridging.cancel()
        await asyncio.wait({bridging}, timeout=BRIDGE_END_S)  # the exit never waits longer
