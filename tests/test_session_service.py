"""The session service: what every front end runs a session through.

The same session through the service (no CLI) and through ``relieve run`` gives the same events
and the same ledger rows; a person who does not confirm starts nothing; binding that fails half
way lets go of what it connected and leaves nothing in the history; a stop while the devices are
being found starts nothing; events reach subscribers and async iterators alike.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.cli.commands import main
from controller.health import HealthQuestionsNeededError, load_answers, save_answers
from controller.ledger import Ledger, SessionRecord
from controller.ledger.allowances import AllowanceError
from controller.library import ProfileLibrary
from controller.session.binding import BindingError
from controller.session.events import Event, Finished, Notice, SessionStarted
from controller.session.service import (
    PRECAUTIONS_HEAT,
    NotConfirmedError,
    SessionError,
    SessionRequest,
    SessionService,
)
from controller.session.supervisor import AskResume
from profiles.health import CONDITION_IDS, HealthError
from simulators.hci_server import HciServer
from simulators.world import SimWorld
from tests.session_harness import CONTRAST_MINI, HEAT_MINUTE

HEAT_PAD = "C0:DE:00:00:00:02"
CONTRAST_PAD = "C0:DE:00:00:00:01"
PROBE = "C0:DE:00:00:00:07"
GUN = "C0:DE:00:00:00:04"
SPEED = 600.0


@dataclass
class Person:
    """A front end's person for tests: answers every confirmation with ``answer``."""

    answer: bool = True
    asked: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    health: Mapping[str, bool] | None = None  # the answers it gives when asked; None: cannot

    async def confirm(self, text: str) -> bool:
        self.asked.append(text)
        return self.answer

    def notice(self, text: str) -> None:
        self.notices.append(text)

    async def health_answers(self) -> Mapping[str, bool] | None:
        self.asked.append("health questions")
        return self.health

    @property
    def ask_resume(self) -> AskResume | None:
        return None


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "heat-minute.toml"
    path.write_text(HEAT_MINUTE, encoding="utf-8")
    return path


def _service(tmp_path: Path) -> SessionService:
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    return SessionService(ProfileLibrary(config), config_dir=config)


def _shape(event: dict[str, Any]) -> tuple[object, ...]:
    """What a person sees of an event, without times and measurements."""
    kind = event["type"]
    if kind == "phase":
        return (kind, event["mode"], event.get("celsius"), event.get("area"))
    if kind == "state":
        return (kind, event["state"])
    if kind == "prompt":
        return (kind, event["text"])
    if kind == "finished":
        return (kind, event["outcome"], event["devices_off"], event["recorded"])
    if kind == "started":
        return (kind, event["profile"], tuple(sorted(event["devices"].items())))
    return (kind, event.get("reason"), event.get("message"))


def _rows(data: Path) -> list[tuple[object, ...]]:
    with Ledger.open(data, simulated=True) as ledger:
        sessions: list[SessionRecord] = ledger.sessions()
    return [
        (
            s.profile,
            s.kind,
            s.outcome,
            s.overrides,
            s.extended,
            tuple(sorted((role, d.address, d.driver) for role, d in s.devices.items())),
            tuple((p.mode, p.area, p.celsius) for p in s.phases),
        )
        for s in sessions
    ]


def test_the_service_and_relieve_run_give_the_same_events_and_ledger_rows(
    tmp_path: Path, profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # through the CLI
    cli_data = tmp_path / "cli-data"
    code = main(
        [
            "--data-dir",
            str(cli_data),
            "--config-dir",
            str(tmp_path / "config"),
            "run",
            str(profile),
            "--simulate",
            "--speed",
            f"{SPEED:g}",
            "--heat",
            HEAT_PAD,
            "--probe",
            PROBE,
            "--yes",
            "--json",
        ]
    )
    assert code == 0
    cli_events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    # through the service, as another front end would
    service_data = tmp_path / "service-data"
    request = SessionRequest(
        profile=str(profile),
        roles={"heat": HEAT_PAD, "probe": PROBE},
        simulate=True,
        speed=SPEED,
        started_by="test",
    )
    person = Person()
    seen: list[Event] = []

    async def through_the_service() -> Finished:
        with Ledger.open(service_data, simulated=True) as ledger:
            session = _service(tmp_path).session(request, person, ledger)
            session.subscribe(seen.append)
            return await session.run()

    finished = asyncio.run(through_the_service())
    assert finished.outcome == "completed"
    assert person.asked == [PRECAUTIONS_HEAT]
    service_events = [e.to_json() for e in seen]

    def shapes(events: list[dict[str, Any]]) -> list[tuple[object, ...]]:
        return [_shape(e) for e in events if e["type"] != "telemetry"]

    assert shapes(service_events) == shapes(cli_events)
    assert shapes(cli_events)[-1] == ("finished", "completed", True, True)
    assert _rows(service_data) == _rows(cli_data)
    assert _rows(cli_data)[0][:3] == ("heat-minute", "heat", "completed")


async def test_a_precaution_not_confirmed_starts_nothing(tmp_path: Path, profile: Path) -> None:
    request = SessionRequest(profile=str(profile), roles={"heat": HEAT_PAD}, simulate=True)
    person = Person(answer=False)
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        session = _service(tmp_path).session(request, person, ledger)
        with pytest.raises(NotConfirmedError, match="nothing was turned on"):
            await session.run()
        assert ledger.sessions() == []
    assert person.asked == [PRECAUTIONS_HEAT]
    assert not session.running


async def test_binding_that_fails_half_way_lets_go_of_what_it_connected(
    tmp_path: Path, profile: Path
) -> None:
    world = SimWorld(devices=["heat-pad", "massage-gun"])
    async with world, await HciServer.start(world.link, f"unix:{tmp_path / 'sim.sock'}") as hci:
        # the heat pad connects; the "probe" is a massage gun: binding fails after the pad
        request = SessionRequest(
            profile=str(profile),
            roles={"heat": HEAT_PAD, "probe": GUN},
            simulator=hci.client_spec,
        )
        with Ledger.open(tmp_path / "data", simulated=True) as ledger:
            session = _service(tmp_path).session(request, Person(), ledger)
            with pytest.raises(BindingError, match="is not a probe"):
                await session.run()
            assert ledger.sessions() == []  # the reservation was withdrawn
        pad = world.device("heat-pad")
        for _ in range(100):  # the link's end reaches the simulated pad through the server
            if not pad.connected:
                break
            await asyncio.sleep(0.02)
        assert not pad.connected
        assert not pad.state.output_on


async def test_a_stop_while_the_devices_are_found_starts_nothing(
    tmp_path: Path, profile: Path
) -> None:
    # no role given: the service scans for a heat pad (two real seconds); stop during the scan
    request = SessionRequest(profile=str(profile), simulate=True, world=("heat-pad",))
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        session = _service(tmp_path).session(request, Person(), ledger)
        task = asyncio.ensure_future(session.run())
        await asyncio.sleep(0.5)
        session.stop("stopped by you")
        with pytest.raises(SessionError, match="stopped by you"):
            await task
        assert ledger.sessions() == []


async def test_events_reach_an_async_iterator_until_finished(tmp_path: Path, profile: Path) -> None:
    request = SessionRequest(
        profile=str(profile), roles={"heat": HEAT_PAD}, simulate=True, speed=SPEED
    )
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        session = _service(tmp_path).session(request, Person(), ledger)
        collected: list[Event] = []

        async def collect() -> None:
            collected.extend([event async for event in session.events()])

        reader = asyncio.ensure_future(collect())
        await asyncio.sleep(0)  # the reader is listening before the session starts
        finished = await session.run()
        await asyncio.wait_for(reader, 5)
    assert isinstance(collected[0], SessionStarted)
    assert collected[-1] == finished


async def test_a_real_session_needs_the_real_history(tmp_path: Path, profile: Path) -> None:
    with Ledger.open(tmp_path / "data", simulated=True) as ledger, pytest.raises(SessionError):
        _service(tmp_path).session(SessionRequest(profile=str(profile)), Person(), ledger)


async def test_a_flagged_condition_blocks_the_session_before_anything_is_asked(
    tmp_path: Path, profile: Path
) -> None:
    service = _service(tmp_path)
    save_answers(service.config_dir, dict.fromkeys(CONDITION_IDS, False) | {"dvt": True})
    request = SessionRequest(profile=str(profile), roles={"heat": HEAT_PAD}, simulate=True)
    person = Person()
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        session = service.session(request, person, ledger)
        with pytest.raises(HealthError, match=r"(?i)dvt"):
            await session.run()
        assert ledger.sessions() == []
    assert person.asked == []  # refused before any question


async def test_a_session_on_real_devices_needs_the_health_questions_answered(
    tmp_path: Path, profile: Path
) -> None:
    request = SessionRequest(profile=str(profile), roles={"heat": HEAT_PAD})
    person = Person()
    with Ledger.open(tmp_path / "data") as ledger:
        session = _service(tmp_path).session(request, person, ledger)
        with pytest.raises(HealthQuestionsNeededError, match="relieve health"):
            await session.run()
        assert ledger.sessions() == []
    assert person.asked == ["health questions"]  # it could not answer them


async def test_a_person_who_can_answers_the_health_questions_first_and_they_count(
    tmp_path: Path, profile: Path
) -> None:
    service = _service(tmp_path)
    request = SessionRequest(profile=str(profile), roles={"heat": HEAT_PAD})
    person = Person(health=dict.fromkeys(CONDITION_IDS, False) | {"diabetic-neuropathy": True})
    with Ledger.open(tmp_path / "data") as ledger:
        with pytest.raises(HealthError, match="diabetic neuropathy"):
            await service.session(request, person, ledger).run()
        assert ledger.sessions() == []
    assert person.asked == ["health questions"]  # asked before any precaution
    stored = load_answers(service.config_dir)
    assert stored.answered
    assert stored.flags["diabetic-neuropathy"] is True


async def test_a_simulated_session_without_answers_says_so_once_in_its_stream(
    tmp_path: Path, profile: Path
) -> None:
    request = SessionRequest(
        profile=str(profile), roles={"heat": HEAT_PAD}, simulate=True, speed=SPEED
    )
    seen: list[Event] = []
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        session = _service(tmp_path).session(request, Person(), ledger)
        session.subscribe(seen.append)
        finished = await session.run()
    assert finished.outcome == "completed"
    notices = [e for e in seen if isinstance(e, Notice) and "health questions" in e.message]
    assert len(notices) == 1
    assert seen.index(notices[0]) == 1  # right after the session started


def test_an_allowance_refusal_is_the_same_sentence_through_the_service_and_the_cli(
    tmp_path: Path, profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def through_the_cli(data: Path) -> tuple[int, str]:
        code = main(
            [
                "--data-dir",
                str(data),
                "--config-dir",
                str(tmp_path / "config"),
                "run",
                str(profile),
                "--simulate",
                "--speed",
                f"{SPEED:g}",
                "--heat",
                HEAT_PAD,
                "--yes",
                "--json",
            ]
        )
        return code, capsys.readouterr().err

    async def through_the_service(data: Path) -> Finished:
        request = SessionRequest(
            profile=str(profile), roles={"heat": HEAT_PAD}, simulate=True, speed=SPEED
        )
        with Ledger.open(data, simulated=True) as ledger:
            return await _service(tmp_path).session(request, Person(), ledger).run()

    cli_data, service_data = tmp_path / "cli-data", tmp_path / "service-data"
    assert through_the_cli(cli_data)[0] == 0
    code, err = through_the_cli(cli_data)  # a second heat session at once: H5
    assert code == 1
    assert asyncio.run(through_the_service(service_data)).outcome == "completed"
    with pytest.raises(AllowanceError) as refused:
        asyncio.run(through_the_service(service_data))
    assert refused.value.rule_id == "H5"
    # the same sentence; the time it names is two hours after each one's own first start
    times = re.compile(r"\d\d:\d\d")
    assert times.sub("HH:MM", err) == times.sub("HH:MM", f"relieve: {refused.value}\n")
    assert _rows(service_data) == _rows(cli_data)


async def test_one_contrast_pad_named_for_heat_and_cold_plays_both(
    tmp_path: Path, profile: Path
) -> None:
    contrast = tmp_path / "contrast.toml"
    contrast.write_text(CONTRAST_MINI, encoding="utf-8")
    request = SessionRequest(
        profile=str(contrast),
        roles={"heat": CONTRAST_PAD, "cold": CONTRAST_PAD.lower()},
        simulate=True,
        world=("contrast-pad",),
        speed=SPEED,
    )
    seen: list[Event] = []
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        session = _service(tmp_path).session(request, Person(), ledger)
        session.subscribe(seen.append)
        finished = await session.run()
    assert finished.outcome == "completed", finished
    started = next(e for e in seen if isinstance(e, SessionStarted))
    assert started.devices["heat"] == started.devices["cold"]
