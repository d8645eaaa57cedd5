"""relieve itself frozen (``kill -STOP``, a suspended laptop): never an automatic resume.

While the controller does not run, an open-profile pad turns itself OFF when its lease runs out.
When the controller runs again its timers, its telemetry and its clock all say "later" at once;
whatever runs first must notice the gap before anything switches an output on. A gap longer
than the link grace means every output OFF, then the session pauses and the person is asked;
unattended, it ends with a high alarm that says what happened in one sentence.

The pads here do not latch LEASE_EXPIRED (the ``unlatched_lease`` fault), so nothing but
relieve's own sense of time can tell that their lease ran out.

In virtual time a freeze is ``VirtualClock.jump``: time passes and nobody runs, then every
overdue sleeper wakes at once. In real time it is ``kill -STOP`` / ``kill -CONT`` of
``relieve run`` against ``relieve sim serve``, checked against the simulated pad's own event
stream.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from controller.session.events import Alarm, Event, Finished, PhaseChanged, StateChanged
from controller.session.runner import SessionRunner
from controller.session.supervisor import LINK_GRACE_S, AskResume
from drivers.codecs import open_profile as op
from simulators.devices.thermal_core import ThermalCore
from simulators.faults import UnlatchedLease
from tests.session_harness import CONTRAST_MINI, Bench, Stamped, assert_off, bench
from tests.sim_processes import (
    HEAT_PAD,
    RELIEVE,
    WARM_MINUTE,
    json_lines,
    sim_server,
    wait_for,
)

PAD = "contrast-pad"
FROZEN = "controller-frozen"  # the alarm's reason (docs/events.md)
FREEZE_S = 30.0  # longer than the link grace (10 s) and than the lease (3 s)
SHORT_FREEZE_S = 4.0  # longer than the lease, shorter than the telemetry stall (5 s)
ANSWER_AFTER_S = 20.0  # clock seconds the person takes to answer
# measured from the last tick of relieve's once-a-second ticker: the freeze, and up to a second
FROZEN_FOR = r"did not run for 3[01] s "


@dataclass
class Commands:
    """The START and RENEW commands the simulated pad received, by clock time."""

    starts: list[float] = field(default_factory=list)
    renewals: list[float] = field(default_factory=list)


def record_commands(core: ThermalCore, monkeypatch: pytest.MonkeyPatch) -> Commands:
    seen = Commands()
    start, renew = core.start, core.renew

    def recorded_start(command: op.ThermalStart, now: float) -> None:
        seen.starts.append(now)
        start(command, now)

    def recorded_renew(lease_ms: int, now: float) -> None:
        seen.renewals.append(now)
        renew(lease_ms, now)

    monkeypatch.setattr(core, "start", recorded_start)
    monkeypatch.setattr(core, "renew", recorded_renew)
    return seen


def _phase(mode: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, PhaseChanged) and e.mode == mode


def _alarms(b: Bench) -> list[Alarm]:
    return [e for e in b.of_type(Alarm) if isinstance(e, Alarm)]


async def _ready(
    b: Bench,
    monkeypatch: pytest.MonkeyPatch,
    ask: AskResume | None = None,
    *,
    probe: bool = False,
) -> tuple[SessionRunner, Commands]:
    """The contrast pad (no skin probe unless asked: then only the pad's own telemetry can
    bring the session back after a freeze) with a lease flag it does not latch."""
    await b.bind(heat=PAD, cold=PAD, probe="skin-probe" if probe else None)
    b.world.inject(PAD, UnlatchedLease())
    commands = record_commands(b.world.pad(PAD).core, monkeypatch)
    b.watch_world()
    runner = b.runner(b.plan_from(CONTRAST_MINI), ask_resume=ask)
    return runner, commands


def _freeze(
    b: Bench, mode: str, after_s: float, then: Callable[[], object] | None = None
) -> list[Stamped]:
    """Freeze the controller for FREEZE_S, ``after_s`` into phase ``mode``; ``then`` runs at
    once after the thaw, before anything else (as telemetry arriving before any timer does)."""

    def freeze() -> None:
        b.clock.jump(FREEZE_S)
        if then is not None:
            then()

    return b.later(_phase(mode), after_s, freeze)


def _assert_ended_by_the_freeze(b: Bench, finished: Finished) -> None:
    assert finished.outcome == "aborted", finished
    high = [a for a in _alarms(b) if a.priority == "high"]
    assert [(a.reason, a.limit_id) for a in high] == [(FROZEN, "S2")], _alarms(b)
    assert finished.reason == high[0].message
    message = high[0].message
    assert re.search(FROZEN_FOR, message), message
    assert "every output OFF" in message
    assert message.endswith("."), message
    assert message.count(".") == 1, message  # one sentence
    assert finished.devices_off
    assert_off(b.world, PAD)
    session = b.ledger.sessions()[0]
    assert session.outcome == "aborted"
    assert ("S2", "high", message) in [(a.limit_id, a.priority, a.message) for a in session.alarms]


def _never_on_after(b: Bench, commands: Commands, thawed: float) -> None:
    assert [t for t in commands.starts if t >= thawed] == []
    assert [t for t in commands.renewals if t >= thawed] == []
    assert not [s for s in b.history(PAD) if s.time >= thawed and s.output_on]


@pytest.mark.parametrize("probe", [False, True], ids=["pad-alone", "with-skin-probe"])
async def test_unattended_freeze_in_heat_ends_the_session_with_every_output_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probe: bool
) -> None:
    async with bench(tmp_path) as b:
        runner, commands = await _ready(b, monkeypatch, probe=probe)
        frozen = _freeze(b, "heat", 30.0)
        finished = await b.run(runner)
        thawed = frozen[0].clock + FREEZE_S
        _never_on_after(b, commands, thawed)
        _assert_ended_by_the_freeze(b, finished)
        # the pad did turn itself off during the freeze, with no flag to say why
        off = [s for s in b.history(PAD) if frozen[0].clock < s.time and not s.output_on]
        assert off
        assert "lease-expired" not in off[0].flags
        # the freeze is reported as a freeze, not as stalled telemetry or a silent probe
        assert [a.reason for a in _alarms(b)] == [FROZEN]


@pytest.mark.parametrize(
    "first",
    [
        pytest.param("reapply", id="a-step-applied-again-runs-first"),
        pytest.param("resume", id="a-resume-runs-first"),
        pytest.param("timeline", id="the-switch-to-cold-is-overdue"),
    ],
)
async def test_whatever_runs_first_after_the_freeze_notices_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    async with bench(tmp_path) as b:
        runner, commands = await _ready(b, monkeypatch)
        pad = b.devices.for_role("heat")
        assert pad is not None
        then: Callable[[], object] | None = None
        after_s = 30.0
        if first == "resume":
            b.later(_phase("heat"), 20.0, runner.pause)  # the person paused before the freeze
            then = runner.resume
        elif first == "reapply":
            then = functools.partial(runner.reapply_soon, pad)  # a link back, say
        else:
            after_s = 110.0  # the cold START (due at 120 s) is overdue when relieve runs again
        frozen = _freeze(b, "heat", after_s, then)
        finished = await b.run(runner)
        _never_on_after(b, commands, frozen[0].clock + FREEZE_S)
        _assert_ended_by_the_freeze(b, finished)


async def test_attended_freeze_in_heat_pauses_asks_and_resumes_only_when_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, float, bool, bool, int]] = []

    async with bench(tmp_path) as b:

        async def ask(question: str) -> bool:
            asked.append(
                (
                    question,
                    b.clock.now(),
                    runner.paused,
                    b.world.pad(PAD).state.output_on,
                    len(commands.starts),
                )
            )
            await b.clock.sleep(ANSWER_AFTER_S)
            return True

        runner, commands = await _ready(b, monkeypatch, ask)
        frozen = _freeze(b, "heat", 30.0)
        finished = await b.run(runner)
        thawed = frozen[0].clock + FREEZE_S
        assert len(asked) == 1, asked
        question, at, paused, pad_on, starts_then = asked[0]
        assert re.search(FROZEN_FOR, question), question
        assert question.endswith("Resume the session?")
        assert at == pytest.approx(thawed)  # asked at once ...
        assert paused  # ... with the session paused ...
        assert not pad_on  # ... and the pad OFF
        answered = at + ANSWER_AFTER_S
        assert [t for t in commands.starts if thawed <= t < answered] == []
        assert starts_then == len([t for t in commands.starts if t < thawed])
        assert [t for t in commands.starts if t >= answered], "heat resumes once the person agrees"
        medium = [a for a in _alarms(b) if a.reason == FROZEN]
        assert [(a.priority, a.limit_id) for a in medium] == [("medium", "S2")]
        assert not [a for a in _alarms(b) if a.priority == "high"]
        resumed = b.stamp_of(lambda e: isinstance(e, StateChanged) and e.state == "resumed")
        assert resumed.clock == pytest.approx(answered)
        assert finished.outcome == "completed", finished
        assert finished.devices_off
        assert_off(b.world, PAD)


async def test_attended_freeze_in_preheat_starts_nothing_until_the_person_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[float] = []

    async with bench(tmp_path) as b:

        async def ask(question: str) -> bool:
            del question
            asked.append(b.clock.now())
            await b.clock.sleep(ANSWER_AFTER_S)
            return True

        runner, commands = await _ready(b, monkeypatch, ask)
        frozen = _freeze(b, "preheat", 10.0)
        finished = await b.run(runner)
        thawed = frozen[0].clock + FREEZE_S
        assert asked == [pytest.approx(thawed)]
        answered = thawed + ANSWER_AFTER_S
        assert [t for t in commands.starts if thawed <= t < answered] == []
        assert not [s for s in b.history(PAD) if thawed <= s.time < answered and s.output_on]
        assert [t for t in commands.starts if t >= answered]
        assert finished.outcome == "completed", finished
        assert finished.devices_off


async def test_a_lease_that_ran_out_while_relieve_stalled_is_never_renewed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 4 s: no freeze (under the 10 s grace), no stall (under 5 s), but longer than the 3 s
    # lease. The pad went OFF without a flag; the driver's own count says why.
    async with bench(tmp_path) as b:
        runner, commands = await _ready(b, monkeypatch)
        stalled = b.later(_phase("heat"), 30.0, lambda: b.clock.jump(SHORT_FREEZE_S))
        finished = await b.run(runner)
        thawed = stalled[0].clock + SHORT_FREEZE_S
        assert [t for t in commands.renewals if t >= thawed] == []
        assert [t for t in commands.starts if t >= thawed] == []
        assert finished.outcome == "aborted", finished
        high = [a for a in _alarms(b) if a.priority == "high"]
        assert [(a.reason, a.limit_id) for a in high] == [("lease-expired", "H4")]
        assert finished.devices_off
        assert_off(b.world, PAD)


# --- real processes, real time ---------------------------------------------------------------

STOP_S = 15.0  # how long the controller is frozen (kill -STOP)
END_S = 10.0  # real seconds the controller may take to end after it is continued

FORGETFUL_PAD = """
name = "heat pad without a latched lease flag"

[[fault]]
device = "heat-pad"
kind = "unlatched_lease"
"""


@pytest.fixture
def forgetful_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with sim_server(tmp_path, FORGETFUL_PAD) as served:
        yield served


@pytest.mark.timeout(90)
def test_kill_stop_mid_heat_never_switches_the_heat_back_on(
    tmp_path: Path, forgetful_server: tuple[str, Path]
) -> None:
    spec, events = forgetful_server
    profile = tmp_path / "warm.toml"
    profile.write_text(WARM_MINUTE)
    data = tmp_path / "data"
    session_out = tmp_path / "run.jsonl"
    with session_out.open("w") as out:
        controller = subprocess.Popen(
            [RELIEVE, "--data-dir", str(data), "run", str(profile), "--simulator", spec,
             "--heat", HEAT_PAD, "--yes", "--json"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def pad() -> list[dict[str, object]]:
        return [e for e in json_lines(events) if e["device"] == "heat-pad"]

    def heating() -> bool:
        phases = [e for e in json_lines(session_out) if e.get("type") == "phase"]
        return any(p.get("mode") == "heat" for p in phases) and any(e["on"] for e in pad())

    try:
        wait_for(heating, "the heat phase")
        os.kill(controller.pid, signal.SIGSTOP)
        time.sleep(STOP_S)
        seen_while_stopped = len(pad())
        os.kill(controller.pid, signal.SIGCONT)
        continued = time.monotonic()
        with contextlib.suppress(subprocess.TimeoutExpired):
            controller.wait(timeout=END_S)
        ended_s = time.monotonic() - continued
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()

    # the pad's own account: it turned itself off during the freeze, without a latched flag,
    # and was never switched on again
    states = pad()
    during = states[:seen_while_stopped]
    assert during
    assert not during[-1]["on"], "the pad did not turn itself off by its lease"
    flags = during[-1]["flags"]
    assert isinstance(flags, list)
    assert "lease-expired" not in flags
    after = states[seen_while_stopped:]
    assert not [s for s in after if s["on"] or s["energised"]], after

    # the controller ended by itself, soon, unattended: aborted, every device off, one sentence
    assert ended_s < END_S, "the controller did not end after it was continued"
    assert controller.returncode == 1
    lines = json_lines(session_out)
    finished = lines[-1]
    assert finished["type"] == "finished"
    assert finished["outcome"] == "aborted"
    assert finished["devices_off"] is True
    reason = str(finished["reason"])
    assert reason.endswith("."), reason
    assert reason.count(".") == 1, reason
    assert "did not run for" in reason
    frozen = [e for e in lines if e.get("type") == "alarm" and e.get("reason") == FROZEN]
    assert [(a["priority"], a["limit_id"]) for a in frozen] == [("high", "S2")]
    assert int(str(reason).split("did not run for ")[1].split(" s")[0]) > LINK_GRACE_S
