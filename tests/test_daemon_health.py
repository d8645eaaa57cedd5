"""A daemon on real devices: the health questions are asked by the client that starts the
session and travel in the start request; without them nothing starts.

No Bluetooth is needed: every case here ends before a device is looked for (a refusal at the
health check, or at a precaution the request did not confirm).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from controller.daemon.server import NodeDaemon, Radio
from controller.health import QUESTIONS_NEEDED, load_answers
from controller.ledger import Ledger
from controller.library import ProfileLibrary
from controller.session.service import SessionService
from profiles.health import CONDITION_IDS

WAIT_S = 20.0


@asynccontextmanager
async def real_node(tmp_path: Path) -> AsyncIterator[tuple[NodeDaemon, Path]]:
    config = tmp_path / "config"
    config.mkdir()
    data = tmp_path / "data"
    with Ledger.open(data, simulated=False) as ledger:
        service = SessionService(ProfileLibrary(config), config_dir=config)
        daemon = NodeDaemon(service, ledger, data, Radio())
        task = asyncio.ensure_future(daemon.serve(handle_signals=False))
        await asyncio.wait_for(daemon.ready.wait(), WAIT_S)
        try:
            yield daemon, config
        finally:
            daemon.shutdown("the test ended")
            await asyncio.wait_for(task, WAIT_S)


async def ask(data: Path, request: dict[str, Any]) -> dict[str, Any]:
    """One request on a connection of its own; its reply (events before it are skipped)."""
    reader, writer = await asyncio.open_unix_connection(str(data / "relieve.sock"))
    try:
        writer.write(json.dumps({**request, "id": 1}).encode() + b"\n")
        while True:
            line = json.loads(await asyncio.wait_for(reader.readline(), WAIT_S))
            if line.get("reply") is not None:
                return dict(line)
    finally:
        writer.close()


async def test_check_says_the_health_questions_are_needed_and_a_start_without_them_is_refused(
    tmp_path: Path,
) -> None:
    async with real_node(tmp_path) as (daemon, config):
        data = daemon.data_dir
        check = await ask(data, {"request": "check", "profile": "contrast-quick"})
        assert check["ok"] is True
        assert check["allowed"] is False
        assert check["health_needed"] is True
        assert check["problem"] == " ".join(QUESTIONS_NEEDED.split())
        start = await ask(
            data,
            {"request": "start", "profile": "contrast-quick", "confirmed": ["heat", "cold"]},
        )
        assert start["ok"] is False
        assert start["error"] == " ".join(QUESTIONS_NEEDED.split())
        assert daemon.ledger.sessions() == []
        assert not load_answers(config).answered


async def test_the_answers_in_the_start_request_are_saved_before_anything_else_is_asked(
    tmp_path: Path,
) -> None:
    # the answers land in the daemon's settings; the start then stops at the precaution the
    # request did not confirm (cold), so nothing is switched on and nothing recorded
    async with real_node(tmp_path) as (daemon, config):
        answers = dict.fromkeys(CONDITION_IDS, False)
        start = await ask(
            daemon.data_dir,
            {
                "request": "start",
                "profile": "contrast-quick",
                "confirmed": ["heat"],
                "health_answers": answers,
            },
        )
        assert start["ok"] is False
        assert "did not confirm" in start["error"]
        assert "Before cold" in start["error"]
        stored = load_answers(config)
        assert stored.answered
        assert stored.flags == answers
        assert daemon.ledger.sessions() == []
        check = await ask(daemon.data_dir, {"request": "check", "profile": "contrast-quick"})
        assert check["health_needed"] is False


async def test_a_yes_that_rules_the_profile_out_refuses_the_start_in_one_sentence(
    tmp_path: Path,
) -> None:
    async with real_node(tmp_path) as (daemon, _config):
        answers = {**dict.fromkeys(CONDITION_IDS, False), "impaired-sensation": True}
        start = await ask(
            daemon.data_dir,
            {
                "request": "start",
                "profile": "contrast-quick",
                "confirmed": ["heat", "cold"],
                "health_answers": answers,
            },
        )
        assert start["ok"] is False
        assert "impaired sensation" in start["error"]
        assert "\n" not in start["error"]
        assert daemon.ledger.sessions() == []
