"""The node daemon (``relieve serve``) as its clients see it: JSON lines on its unix socket.

Each test runs a daemon in-process on a virtual clock with simulated pads (tests/daemon_rig.py)
and talks to it over its socket, as ``relieve run``, ``relieve attach`` or socat would. What is
checked is what a person would observe: the lines a client gets, what the simulated devices
themselves report (an output ON or OFF), and what the history recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.daemon.client import connect
from controller.daemon.protocol import (
    MAX_LINE_BYTES,
    VERBS,
    AttachRequest,
    CheckRequest,
    ControlRequest,
    ProtocolError,
    StartRequest,
    StatusRequest,
    decode_request,
)
from controller.daemon.server import MAX_CLIENTS, RATE_BURST, DaemonError, NodeDaemon
from simulators.faults import RefuseConnections
from tests.daemon_rig import (
    COLD_PAD,
    HEAT_PROFILE,
    LOOKS,
    PAD,
    PROFILE,
    ROLES,
    STEP_S,
    Client,
    Line,
    Node,
    answer_to,
    event,
    heat_start,
    node,
    question,
    start_request,
    watch,
)

ERROR_CODES = {"bad-request", "unknown-request", "too-long", "too-many", "busy", "refused", "bug"}
LINK_LOSS = RefuseConnections(at=1, duration=20, hide=True)  # the pad out of range for 20 s


def assert_error(line: Line, code: str) -> None:
    """An error reply as the protocol documents it: ``ok: false``, one sentence, ``code``."""
    assert "reply" in line, line
    assert line["ok"] is False, line
    assert line["code"] == code, line
    assert isinstance(line["error"], str), line
    assert line["error"].strip(), line
    assert "\n" not in line["error"], line


def no_event_after(client: Client, index: int, kind: str, **keys: Any) -> bool:
    return client.find(event(kind, **keys), index) is None


async def heat_on(n: Node, client: Client) -> None:
    """Until the contrast session's heat phase runs with the heat pad ON."""
    await n.line(client, event("phase", mode="heat"))
    await n.until(lambda: n.state(PAD).output_on)


# --- a session from start to end ----------------------------------------------------------


async def test_a_session_streams_its_events_and_completes_with_every_device_off(
    tmp_path: Path,
) -> None:
    async with node(tmp_path) as n:
        client = await n.connect()
        started = await n.start(client)
        assert started["ok"] is True
        session = started["session"]
        assert session["profile"] == PROFILE
        assert session["state"] == "preconditioning"
        assert session["started_by"] == "test"
        finished = await n.line(client, event("finished"))
        assert finished["outcome"] == "completed"
        assert finished["devices_off"] is True
        assert finished["recorded"] is True
        assert finished["delivered_s"] == 240
        events = client.events()
        assert events[0]["type"] == "started"
        assert events[0]["profile"] == PROFILE
        assert events[-1] == finished  # always the last line
        phases = [(e["mode"], e["t"]) for e in events if e["type"] == "phase"]
        assert phases == [("preheat", -120), ("heat", 0), ("cold", 120), ("off", 240)]
        assert not client.bad  # every line was one JSON object
        # what the devices themselves say, and what the history recorded
        assert n.every_device_off()
        records = n.ledger.sessions()
        assert [(r.id, r.outcome) for r in records] == [(session["id"], "completed")]
        status = await n.ask(client, "status")
        assert status["ok"] is True
        assert status["session"] is None
        assert status["last"]["id"] == session["id"]
        assert status["last"]["finished"]["outcome"] == "completed"


@pytest.mark.parametrize("confirmed", [[], ["heat"], ["cold"]])
async def test_a_start_without_every_confirmation_switches_nothing_on_and_records_nothing(
    tmp_path: Path, confirmed: list[str]
) -> None:
    async with node(tmp_path) as n:
        seen = watch(n.world)
        client = await n.connect()
        refused = await n.start(client, confirmed=confirmed)
        assert_error(refused, "refused")
        assert "nothing was turned on" in refused["error"]
        missing = "cold" if confirmed == ["heat"] else "heat"
        assert f"Before {missing}" in refused["error"]  # says what was not confirmed
        assert client.find(event("started")) is None
        assert not any(s.connected or s.output_on or s.energised for s in seen)
        assert n.every_device_off()
        assert n.ledger.sessions() == []
        status = await n.ask(client, "status")
        assert status["session"] is None
        # the node is free: the same start with every confirmation begins
        again = await n.start(client)
        assert again["ok"] is True
        assert [r.outcome for r in n.ledger.sessions()] == ["running"]


async def test_a_second_client_attaches_mid_session_then_pauses_resumes_and_stops_it(
    tmp_path: Path,
) -> None:
    async with node(tmp_path) as n:
        first = await n.connect()
        started = await n.start(first)
        await heat_on(n, first)
        await n.clock.advance(20)
        second = await n.connect()
        attached = await n.ask(second, "attach")
        # the reply first, with the session as status shows it ...
        assert second.lines[0] == attached
        assert attached["ok"] is True
        assert attached["node"]["attached"] == 2
        session = attached["session"]
        assert (session["id"], session["profile"]) == (started["session"]["id"], PROFILE)
        assert session["state"] == "running"
        assert session["phase"]["mode"] == "heat"
        assert session["t"] == pytest.approx(20, abs=STEP_S)
        # ... then what happened so far: the start, the phases, each device's latest telemetry
        replay = second.events()
        assert replay[0]["type"] == "started"
        assert [e["mode"] for e in replay if e["type"] == "phase"] == ["preheat", "heat"]
        assert {e["role"] for e in replay if e["type"] == "telemetry"} >= {"heat", "cold"}
        # ... then live: a pause from the second client turns the heat pad OFF
        before = len(first.lines)
        paused = await n.ask(second, "pause", by="test client")
        assert paused["ok"] is True
        await n.until(lambda: n.off(PAD))
        state = await n.line(first, event("state", state="paused"), after=before)
        assert state["reason"].startswith("paused by test client")
        await n.line(second, event("state", state="paused"))
        again = await n.ask(second, "pause")
        assert_error(again, "refused")  # already paused
        await n.clock.advance(60)  # paused: the pad stays OFF and the phase is held
        assert n.off(PAD)
        assert no_event_after(first, before, "phase")
        status = await n.ask(first, "status")
        assert status["session"]["state"] == "paused"
        resumed = await n.ask(second, "resume")
        assert resumed["ok"] is True
        await n.line(first, event("state", state="resumed"), after=before)
        await n.until(lambda: n.state(PAD).output_on)
        stopped = await n.ask(second, "stop", by="test client")
        assert stopped == {"reply": "stop", "id": stopped["id"], "ok": True, "stopped": True}
        finished = await n.line(first, event("finished"))
        assert finished["outcome"] == "stopped"
        assert finished["reason"].startswith("stopped by test client")
        assert finished["devices_off"] is True
        assert n.every_device_off()
        assert [r.outcome for r in n.ledger.sessions()] == ["stopped"]
        # both saw the same session: every event but telemetry, in the same order
        assert (await n.line(second, event("finished"))) == finished

        def story(client: Client) -> list[Line]:
            return [e for e in client.events() if e["type"] != "telemetry"]

        assert story(second) == story(first)


async def test_a_killed_client_leaves_the_session_running_to_its_end(tmp_path: Path) -> None:
    async with node(tmp_path) as n:
        starter = await n.connect()
        await n.start(starter)
        watcher = await n.connect()
        await n.ask(watcher, "attach")
        await heat_on(n, starter)
        starter.kill()  # no stop: the process is gone
        await n.until(lambda: n.daemon.status()["node"]["attached"] == 1, move_time=False)
        assert n.state(PAD).output_on  # the heat goes on
        cold = await n.line(watcher, event("phase", mode="cold"))
        assert cold["t"] == 120  # on time
        await n.ended(client=watcher, outcome="completed")


async def test_a_second_start_while_a_session_runs_is_refused_as_busy(tmp_path: Path) -> None:
    async with node(tmp_path) as n:
        first = await n.connect()
        started = await n.start(first)
        await heat_on(n, first)
        before = len(first.lines)
        other = await n.connect()
        busy = await n.start(other, confirmed=["heat", "cold"])
        assert_error(busy, "busy")
        assert "already running" in busy["error"]
        check = await n.ask(other, "check", profile=PROFILE)
        assert_error(check, "busy")
        # the running session did not notice
        assert n.state(PAD).output_on
        status = await n.ask(other, "status")
        assert status["session"]["id"] == started["session"]["id"]
        assert status["session"]["state"] == "running"
        assert status["session"]["phase"]["mode"] == "heat"
        assert no_event_after(first, before, "state")
        assert [r.outcome for r in n.ledger.sessions()] == ["running"]
        finished = await n.line(first, event("finished"))
        assert finished["outcome"] == "completed"


# --- the daemon's own life ---------------------------------------------------------------


@pytest.mark.parametrize("signals", [1, 2], ids=["sigterm", "twice"])
async def test_stopping_the_daemon_mid_heat_stops_the_session_with_every_device_off(
    tmp_path: Path, signals: int
) -> None:
    async with node(tmp_path) as n:
        client = await n.connect()
        await n.start(client)
        await heat_on(n, client)
        for _ in range(signals):  # as SIGTERM does (a second one: an emergency stop)
            n.daemon.shutdown("SIGTERM")
        await n.until(n.task.done)
        assert n.task.result() is None  # serve() returned: the process exits 0
        assert n.every_device_off()
        assert not n.state(PAD).connected
        assert [r.outcome for r in n.ledger.sessions()] == ["stopped"]
        assert not n.socket.exists()
        await n.until(lambda: client.eof, move_time=False)  # the daemon hung up
        finished = client.all(event("finished"))
        assert len(finished) == 1
        assert finished[0]["outcome"] == "stopped"
        assert finished[0]["devices_off"] is True
        with pytest.raises(FileNotFoundError):  # nobody listens any more
            await asyncio.open_unix_connection(str(n.socket))


async def test_a_restarted_daemon_starts_nothing_by_itself(tmp_path: Path) -> None:
    async with node(tmp_path) as n:
        client = await n.connect()
        await n.start(client)
        await heat_on(n, client)
        await n.clock.advance(30)  # half a minute of heat, recorded
        await n.stop_serving("SIGTERM")
        again = NodeDaemon(n.daemon.service, n.ledger, n.data_dir, n.daemon.radio)
        serving = asyncio.ensure_future(again.serve(handle_signals=False))
        try:
            await n.until(again.ready.is_set, move_time=False)
            newcomer = await n.connect()
            status = await n.ask(newcomer, "status")
            assert status["session"] is None
            # how the last session ended survives the restart (the history has it)
            assert status["last"]["profile"] == "contrast-mini"
            assert status["last"]["finished"]["outcome"] == "stopped"
            assert status["last"]["finished"]["delivered_s"] >= 30
            await n.clock.advance(60)
            assert n.every_device_off()
            assert [r.outcome for r in n.ledger.sessions()] == ["stopped"]
        finally:
            again.shutdown("the test ended")
            await serving
        assert not n.socket.exists()


async def test_a_second_daemon_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    async with node(tmp_path) as n:
        second = NodeDaemon(n.daemon.service, n.ledger, n.data_dir, n.daemon.radio)
        with pytest.raises(DaemonError) as refused:
            await second.serve(handle_signals=False)
        message = str(refused.value)
        assert "Another relieve serve already runs" in message
        assert f"(process {os.getpid()})" in message
        assert not second.ready.is_set()
        # the first one still serves, on its socket
        client = await n.connect()
        status = await n.ask(client, "status")
        assert status["node"]["pid"] == os.getpid()


async def test_a_data_directory_too_long_for_a_socket_address_still_serves(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    async with node(tmp_path, data_dir=deep) as n:
        assert len(os.fsencode(n.socket)) > 107
        assert stat.S_IMODE(n.socket.stat().st_mode) == 0o600  # owner only
        connection = await connect(deep)
        assert connection is not None
        try:
            status = await connection.request("status")
        finally:
            await connection.close()
        assert status["node"]["data_dir"] == str(deep)
        assert status["node"]["simulated"] is True
        await n.stop_serving()
        assert not n.socket.exists()
        assert await connect(deep) is None


# --- bad lines ------------------------------------------------------------------------------


BAD_LINES = {
    "not JSON": (b"hello daemon", "bad-request"),
    "a JSON list": (b'["status"]', "bad-request"),
    "a JSON string": (b'"status"', "bad-request"),
    "no verb": (b'{"id": 1}', "bad-request"),
    "a verb that is no string": (b'{"request": ["status"]}', "bad-request"),
    "an unknown verb": (b'{"request": "reboot", "id": 1}', "unknown-request"),
    "a wrong type": (b'{"request": "start", "profile": 5}', "bad-request"),
    "a bool for a number": (b'{"request": "answer", "question": true, "yes": true}', "bad-request"),
    "an extra key": (b'{"request": "status", "verbose": true}', "bad-request"),
    "NaN": (b'{"request": "check", "profile": "x", "lift": [NaN]}', "bad-request"),
    "Infinity": (b'{"request": "status", "id": Infinity}', "bad-request"),
    "a number too big for a float": (b'{"request": "status", "id": 1e999}', "bad-request"),
    "an id too long": (b'{"request": "status", "id": "' + b"i" * 65 + b'"}', "bad-request"),
    "invalid UTF-8": (b'{"request": "status", "id": "\xff\xfe"}', "bad-request"),
    "a lone surrogate": (b'{"request": "check", "profile": "\\ud800"}', "bad-request"),
    "a surrogate verb": (b'{"request": "\\udfff"}', "unknown-request"),
    "nested too deeply": (
        b'{"request": "status", "id": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        "bad-request",
    ),
    "a stop by an odd name": (b'{"request": "stop", "by": "<script>"}', "bad-request"),
    "a line too long": (
        b'{"request": "status", "id": "' + b"x" * MAX_LINE_BYTES + b'"}',
        "too-long",
    ),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
async def test_a_bad_line_gets_one_error_reply_and_the_connection_keeps_working(
    tmp_path: Path, case: str
) -> None:
    line, code = BAD_LINES[case]
    async with node(tmp_path) as n:
        client = await n.connect()
        client.send_raw(line + b"\n")
        client.send({"request": "status", "id": "after"})
        status = await n.line(client, answer_to("status", "after"), move_time=False)
        assert status["ok"] is True
        assert len(client.lines) == 2, client.lines  # one reply each, in order
        assert_error(client.lines[0], code)
        assert not client.bad
        assert n.ledger.sessions() == []


@pytest.mark.parametrize("line", [b"", b"   ", b"\t \r"], ids=["empty", "spaces", "blanks"])
async def test_an_empty_line_is_no_request_and_gets_no_reply(tmp_path: Path, line: bytes) -> None:
    async with node(tmp_path) as n:
        client = await n.connect()
        client.send_raw(line + b"\n" + line + b"\n")
        client.send({"request": "status", "id": "after"})
        status = await n.line(client, answer_to("status", "after"), move_time=False)
        assert status["ok"] is True
        assert client.lines == [status]


async def test_a_line_too_long_is_refused_at_once_and_skipped_to_its_newline(
    tmp_path: Path,
) -> None:
    async with node(tmp_path) as n:
        client = await n.connect()
        # exactly the limit is still a request; one byte more is not
        padded = b'{"request": "status", "id": "edge"' + b" " * MAX_LINE_BYTES
        client.send_raw(padded[: MAX_LINE_BYTES - 1] + b"}\n")
        edge = await n.line(client, answer_to("status", "edge"), move_time=False)
        assert edge["ok"] is True
        client.send_raw(padded[:MAX_LINE_BYTES] + b"}\n")
        client.send({"request": "status", "id": "after-edge"})
        await n.line(client, answer_to("status", "after-edge"), move_time=False)
        assert len(client.lines) == 3
        assert_error(client.lines[1], "too-long")
        # a line that never ends is refused before its newline comes ...
        client.send_raw(b'{"request": "status", "id": "' + b"x" * (MAX_LINE_BYTES + 100))
        await n.until(lambda: len(client.lines) == 4, move_time=False)
        assert_error(client.lines[3], "too-long")
        # ... and everything up to its newline is part of it, a request in it too
        client.send_raw(b'x", "more": "' + b"y" * 3 * MAX_LINE_BYTES)
        client.send_raw(b'{"request": "status", "id": "inside"}' + b'"}\n')
        client.send_raw(b'{"request": "status", "id": "after"}\n')
        await n.line(client, answer_to("status", "after"), move_time=False)
        assert len(client.lines) == 5  # one refusal for the whole long line, no more
        assert client.find(answer_to("status", "inside")) is None


# --- floods, crowds and slow readers ------------------------------------------------------


async def test_a_flood_of_requests_is_limited_but_a_stop_in_it_still_stops_the_session(
    tmp_path: Path,
) -> None:
    async with node(tmp_path) as n:
        starter = await n.connect()
        await n.start(starter)
        await heat_on(n, starter)
        client = await n.connect()  # its own allowance: 40 requests at once
        flood = b"".join(
            json.dumps({"request": "status", "id": number}).encode() + b"\n"
            for number in range(1, 501)
        )
        client.send_raw(flood + b'{"request": "stop", "id": "stop", "by": "flood"}\n')
        stopped = await n.line(client, answer_to("stop", "stop"), move_time=False)
        assert stopped["ok"] is True
        assert stopped["stopped"] is True
        await n.until(lambda: len(client.all(answer_to("status"))) == 500, move_time=False)
        replies = client.all(answer_to("status"))
        assert sorted(r["id"] for r in replies) == list(range(1, 501))  # one each
        answered = [r for r in replies if r["ok"]]
        limited = [r for r in replies if not r["ok"]]
        assert RATE_BURST <= len(answered) <= RATE_BURST + 20
        assert len(answered) + len(limited) == 500
        for reply in limited:
            assert_error(reply, "too-many")
        finished = await n.line(starter, event("finished"))
        assert finished["outcome"] == "stopped"
        assert finished["reason"].startswith("stopped by flood")
        assert n.every_device_off()
        assert [r.outcome for r in n.ledger.sessions()] == ["stopped"]


async def test_a_client_too_many_is_turned_away_and_the_others_keep_working(
    tmp_path: Path,
) -> None:
    async with node(tmp_path) as n:
        clients = [await n.connect() for _ in range(MAX_CLIENTS)]
        for client in clients:  # each is served (so each is counted)
            assert (await n.ask(client, "status"))["ok"] is True
        extra = await n.connect()
        extra.send({"request": "status", "id": 1})
        await n.until(lambda: extra.eof, move_time=False)  # closed by the daemon
        assert len(extra.lines) == 1
        assert_error(extra.lines[0], "refused")
        assert "busy" in extra.lines[0]["error"]
        for client in (clients[0], clients[-1]):
            assert (await n.ask(client, "status"))["ok"] is True
        # one leaves: there is room again
        await clients[0].close()
        await n.until(lambda: len(n.daemon.clients) < MAX_CLIENTS, move_time=False)
        late = await n.connect()
        assert (await n.ask(late, "status"))["ok"] is True


async def test_a_client_that_never_reads_is_dropped_and_the_session_goes_on(
    tmp_path: Path,
) -> None:
    async with node(tmp_path) as n:
        reader = await n.connect()
        await n.start(reader)
        sleeper = await n.connect()
        await n.ask(sleeper, "attach")
        await heat_on(n, reader)
        sleeper.stop_reading()  # it reads nothing from here on
        # thousands of replies it does not read: far more than the daemon keeps for it
        sleeper.send_raw(b'{"request": "status"}\n' * 6000)
        await n.until(lambda: len(n.daemon.clients) == 1, move_time=False)
        status = await n.ask(reader, "status")
        assert status["node"]["attached"] == 1
        assert status["session"]["state"] == "running"
        cold = await n.line(reader, event("phase", mode="cold"))
        assert cold["t"] == 120
        finished = await n.line(reader, event("finished"))
        assert finished["outcome"] == "completed"
        assert n.every_device_off()
        sleeper.resume_reading()
        await n.until(lambda: sleeper.eof, move_time=False)
        assert len(sleeper.all(answer_to("status"))) < 6000  # cut off
        assert sleeper.find(event("finished")) is None


# --- questions during a session -----------------------------------------------------------


async def test_a_long_link_loss_asks_the_attached_clients_and_yes_resumes(tmp_path: Path) -> None:
    async with node(tmp_path) as n:
        client = await n.connect()
        await n.start(client)
        await heat_on(n, client)
        n.world.inject(PAD, LINK_LOSS)
        asked = await n.line(client, question)
        number = asked["question"]
        assert "Resume when it is back?" in asked["text"]
        assert n.off(PAD)  # every output OFF while the person is asked
        assert n.off(COLD_PAD)
        await n.clock.advance(40)  # the pad is back in range; nothing resumes before the answer
        assert n.off(PAD)
        # a client that attaches now is asked too
        late = await n.connect()
        await n.ask(late, "attach")
        assert late.find(lambda line: line.get("question") == number and "text" in line) is not None
        nothing = await n.ask(late, "answer", question=number + 1, yes=True)
        assert_error(nothing, "refused")
        yes = await n.ask(late, "answer", question=number, yes=True)
        assert yes["ok"] is True
        closed = {"question": number, "closed": True, "yes": True}
        await n.line(client, lambda line: line == closed)
        await n.line(late, lambda line: line == closed)
        await n.until(lambda: n.state(PAD).output_on)  # the heat is back on
        again = await n.ask(client, "answer", question=number, yes=False)
        assert_error(again, "refused")  # answered already
        await n.ask(client, "stop")
        await n.ended(client=client, outcome="stopped")


async def test_no_to_the_question_ends_the_session_with_every_device_off(tmp_path: Path) -> None:
    async with node(tmp_path) as n:
        client = await n.connect()
        await n.start(client)
        await heat_on(n, client)
        n.world.inject(PAD, LINK_LOSS)
        asked = await n.line(client, question)
        await n.ask(client, "answer", question=asked["question"], yes=False)
        finished = await n.line(client, event("finished"))
        assert finished["outcome"] == "stopped"
        assert "lost for more than 10 s" in finished["reason"]
        await n.clock.advance(60)
        assert n.every_device_off()
        assert [r.outcome for r in n.ledger.sessions()] == ["stopped"]


@pytest.mark.parametrize("when", ["before", "while asked"])
async def test_with_nobody_attached_a_long_link_loss_ends_the_session(
    tmp_path: Path, when: str
) -> None:
    async with node(tmp_path) as n:
        client = await n.connect()
        started = await n.start(client)
        await heat_on(n, client)
        if when == "before":
            client.kill()
            n.world.inject(PAD, LINK_LOSS)
        else:
            n.world.inject(PAD, LINK_LOSS)
            await n.line(client, question)
            client.kill()  # gone before answering: nobody will
        await n.session_ended()
        await n.clock.advance(60)  # the pad back in range: nothing switches it on again
        assert n.every_device_off()
        assert [r.outcome for r in n.ledger.sessions()] == ["stopped"]
        observer = await n.connect()
        last = (await n.ask(observer, "status"))["last"]
        assert last["id"] == started["session"]["id"]
        assert last["finished"]["outcome"] == "stopped"
        assert last["finished"]["devices_off"] is True
        assert "lost for more than 10 s" in last["finished"]["reason"]


# --- garbage never changes the session (property) -----------------------------------------

_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=2),
)
_ROLE_NAMES = st.sampled_from(["heat", "cold", "gun", "probe", "lamp"])
_ADDRESSES = st.sampled_from([*ROLES.values(), "manual", "", "C0:DE:00:00:00:99"])
_FIELDS = {
    "id": st.one_of(st.integers(), st.text(max_size=70), _JUNK),
    "profile": st.one_of(st.sampled_from([PROFILE, HEAT_PROFILE, "no-such", ""]), _JUNK),
    "roles": st.one_of(st.dictionaries(_ROLE_NAMES, _ADDRESSES, max_size=3), _JUNK),
    "extend": st.one_of(st.booleans(), _JUNK),
    "lift": st.one_of(st.lists(st.text(max_size=9), max_size=3), _JUNK),
    "confirmed": st.one_of(
        st.lists(st.sampled_from(["heat", "cold", "gun", "extension", "all"])), _JUNK
    ),
    "health_answers": st.one_of(st.dictionaries(st.text(max_size=8), st.booleans()), _JUNK),
    "started_by": st.one_of(st.sampled_from(["cli", "tui", "Bad Name", ""]), _JUNK),
    "attach": st.one_of(st.booleans(), _JUNK),
    "by": st.one_of(st.text(max_size=50), _JUNK),
    "question": st.one_of(st.integers(), _JUNK),
    "yes": st.one_of(st.booleans(), _JUNK),
    "bogus": _JUNK,
}
_REQUEST_SHAPED = st.fixed_dictionaries(
    {"request": st.one_of(st.sampled_from(VERBS), st.text(max_size=12), _JUNK)},
    optional=_FIELDS,
)
_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _dumps(obj: object) -> bytes:
    return json.dumps(obj).encode()


def _spliced(parts: tuple[bytes, int, bytes]) -> bytes:
    line, at, junk = parts
    return line[:at] + junk + line[at:]


def _padded_status(size: int) -> bytes:
    """A status request of exactly ``size`` bytes (spaces before its closing brace)."""
    head = b'{"request": "status"'
    return head + b" " * (size - len(head) - 1) + b"}"


def _stops_or_pauses(line: bytes) -> bool:
    """A line the daemon takes as a valid stop, emergency stop or pause (left out: it would
    change the session, as it should)."""
    if len(line) > MAX_LINE_BYTES:
        return False
    try:
        request = decode_request(line)
    except ProtocolError:
        return False
    return isinstance(request, ControlRequest) and request.request in (
        "stop",
        "emergency-stop",
        "pause",
    )


_LINES = (
    st.one_of(
        _REQUEST_SHAPED.map(_dumps),
        _JSON.map(_dumps),
        st.binary(max_size=80),
        st.tuples(
            _REQUEST_SHAPED.map(_dumps), st.integers(0, 120), st.binary(min_size=1, max_size=3)
        ).map(_spliced),
        st.integers(MAX_LINE_BYTES - 1, MAX_LINE_BYTES + 1).map(_padded_status),
    )
    .map(lambda line: line.replace(b"\n", b""))
    .filter(lambda line: not _stops_or_pauses(line))
)


# At most 37 requests from one connection (36 lines and the probe): under the rate limit's
# burst, so every reply is the one the line itself earns.
FUZZ_EXAMPLES = 150
FUZZ_MIN_LINES = 7


def _expected_reply(line: bytes) -> tuple[bool, str | None] | None:
    """(ok, code) of the one reply ``line`` gets while a session runs; None: no reply."""
    if len(line) > MAX_LINE_BYTES:
        return (False, "too-long")
    if not line.strip():
        return None
    try:
        request = decode_request(line)
    except ProtocolError as exc:
        return (False, exc.code)
    if isinstance(request, StatusRequest | AttachRequest):
        return (True, None)
    if isinstance(request, CheckRequest | StartRequest):
        return (False, "busy")
    return (False, "refused")  # a resume (not paused), an answer (no question)


async def _fuzz_once(
    n: Node, watcher: Client, since: int, record_id: int, lines: list[bytes]
) -> None:
    """Send ``lines`` from a new client, then check: one reply per line, as expected; the
    connection still answers; the session runs on, in its heat, unpaused, the pad ON."""
    client = await n.connect()
    try:
        client.send_raw(b"".join(line + b"\n" for line in lines))
        client.send({"request": "status", "id": "fuzz-probe"})
        expected = [e for e in (_expected_reply(line) for line in lines) if e is not None]
        await n.until(
            lambda: len(client.all(lambda r: "reply" in r)) >= len(expected) + 1,
            move_time=False,
        )
        replies = client.all(lambda r: "reply" in r)
        assert not client.bad
        probes = [r for r in replies if r.get("id") == "fuzz-probe" and r["reply"] == "status"]
        assert probes, replies
        probe = probes[-1]
        replies.remove(probe)
        assert Counter((r["ok"], r.get("code")) for r in replies) == Counter(expected)
        for reply in replies:
            if not reply["ok"]:
                assert_error(reply, str(reply["code"]))
                assert reply["code"] in ERROR_CODES
        session = probe["session"]
        assert session is not None, "the session ended"
        assert session["id"] == record_id
        assert session["state"] == "running"
        assert session["phase"]["mode"] == "heat"
        assert n.state(PAD).output_on
        assert watcher.find(event("state"), since) is None  # never paused
        assert watcher.find(event("finished"), since) is None
    finally:
        await client.close()
    await n.clock.advance(1)  # time goes on between examples


def test_garbage_from_clients_never_changes_the_running_session(tmp_path: Path) -> None:
    # one daemon and one session for every example: the loop is this test's own, and each
    # example runs on it (hypothesis calls the sync function below)
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()
    sent: list[int] = []
    try:
        n = loop.run_until_complete(stack.enter_async_context(node(tmp_path)))
        watcher = loop.run_until_complete(n.connect())
        started = loop.run_until_complete(n.start(watcher, **heat_start()))
        assert started["ok"] is True, started
        loop.run_until_complete(n.line(watcher, event("phase", mode="heat")))
        before = len(watcher.lines)
        record_id = started["session"]["id"]

        first_failing: list[list[bytes]] = []

        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            report_multiple_bugs=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(lines=st.lists(_LINES, min_size=FUZZ_MIN_LINES, max_size=36))
        def garbage_changes_nothing(lines: list[bytes]) -> None:
            sent.append(len(lines))
            try:
                loop.run_until_complete(_fuzz_once(n, watcher, before, record_id, lines))
            except AssertionError:
                if not first_failing:
                    first_failing.append(lines)
                raise

        try:
            garbage_changes_nothing()
        except AssertionError as exc:
            # every example shares the daemon and its session: the example hypothesis shrinks
            # to may only show the damage an earlier one did; this one did it first
            raise AssertionError(f"first failing lines: {first_failing[:1]!r}") from exc
        assert len(sent) == FUZZ_EXAMPLES
        assert sum(sent) >= FUZZ_EXAMPLES * FUZZ_MIN_LINES  # over a thousand lines
        assert watcher.find(event("state"), before) is None
        loop.run_until_complete(n.stop_serving())
        assert [r.outcome for r in n.ledger.sessions()] == ["stopped"]
    finally:
        loop.run_until_complete(stack.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# --- found wanting ---------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["stop", "emergency-stop"])
async def test_a_stop_right_behind_its_start_switches_nothing_on(tmp_path: Path, verb: str) -> None:
    # start and stop in one write (socat, a script, Ctrl-C at once): the daemon reads both at
    # once, answers the stop with "stopped": true -- then nothing may be switched on
    async with node(tmp_path) as n:
        seen = watch(n.world)
        client = await n.connect()
        start = {**start_request(), "id": "start"}
        client.send_raw(_dumps(start) + b"\n" + _dumps({"request": verb, "id": "stop"}) + b"\n")
        stopped = await n.line(client, answer_to(verb, "stop"), move_time=False)
        assert stopped["ok"] is True
        assert stopped["stopped"] is True
        await n.line(client, answer_to("start", "start"), move_time=False)
        await n.session_ended()
        assert not any(s.output_on or s.energised for s in seen), "a pad was switched on"
        assert "completed" not in n.outcomes()


async def test_a_client_a_little_behind_still_gets_the_last_lines_when_the_daemon_stops(
    tmp_path: Path,
) -> None:
    # A client reading slowly -- far fewer than the 2,000 lines behind that get it dropped --
    # when the daemon is stopped (SIGTERM): the lines the daemon already queued for it, the
    # session's "finished" among them, still reach it before the connection closes (the daemon
    # waits a few seconds for a client that reads; one that never reads again is cut off).
    async with node(tmp_path) as n:
        client = await n.connect()
        await n.start(client)
        await heat_on(n, client)
        client.stop_reading()  # busy for a moment
        (daemon_side,) = n.daemon.clients
        behind = 0
        for _ in range(LOOKS):  # until the socket is full and the daemon holds a few lines
            if daemon_side.writer.transport.get_write_buffer_size() > 0:
                break
            client.send_raw(b'{"request": "status"}\n' * 10)
            behind += 10
            await asyncio.sleep(0.01)
        assert behind < 1000
        n.daemon.shutdown("SIGTERM")
        await asyncio.sleep(0.2)  # busy a moment longer, while the daemon stops
        client.resume_reading()
        await n.until(n.task.done)
        await n.until(lambda: client.eof, move_time=False)
        # the requests it read were answered (a line it had not read when it stopped is not)
        assert len(client.all(answer_to("status"))) > 0
        finished = client.all(event("finished"))
        assert [f["outcome"] for f in finished] == ["stopped"], "the finished line was lost"
