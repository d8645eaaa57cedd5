"""Line commands at the terminal: p pauses, r resumes, s stops, and questions get answers."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

from controller.cli.keys import HELP, SessionKeys
from controller.session.events import StateChanged
from tests.session_harness import bench


async def test_typed_lines_pause_resume_and_stop_a_session(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        await b.bind(heat="contrast-pad", cold="contrast-pad")
        runner = b.runner(b.plan("contrast-quick"))
        read_fd, write_fd = os.pipe()
        keys = SessionKeys(os.fdopen(read_fd), io.StringIO())
        task = asyncio.ensure_future(runner.run())
        with keys.attached(runner):
            await b.clock.advance(200)  # pre-heat done, into the first heat phase
            pad = b.world.pad()
            assert pad.state.output_on
            os.write(write_fd, b"p\n")
            await b.clock.advance(5)
            assert runner.paused
            assert not pad.state.output_on
            os.write(write_fd, b"r\n")
            await b.clock.advance(5)
            assert not runner.paused
            assert pad.state.output_on
            os.write(write_fd, b"s\n")
            await b.clock.run(task)
        os.close(write_fd)
        finished = task.result()
        assert finished.outcome == "stopped"
        assert finished.reason == "stopped by you"
        assert not pad.state.output_on
        states = [e.state for e in b.events if isinstance(e, StateChanged)]
        assert states.count("paused") == 1
        assert states.count("resumed") == 1


async def test_a_question_takes_the_next_line_as_its_answer() -> None:
    out = io.StringIO()
    keys = SessionKeys(io.StringIO(), out)
    answer = asyncio.ensure_future(keys.ask("Resume when it is back?"))
    await asyncio.sleep(0)
    keys.handle("yes\n")
    assert await answer is True
    no = asyncio.ensure_future(keys.ask("Again?"))
    await asyncio.sleep(0)
    keys.handle("\n")
    assert await no is False
    keys.handle("what\n")  # no session attached, not a question: nothing happens
    assert "Resume when it is back? [y/N]" in out.getvalue()
    assert HELP not in out.getvalue()
