"""What a person reads: the live view's lines and status, and the JSON lines."""

from __future__ import annotations

import io
import json

from controller.cli.console import JsonLines, LiveView
from controller.session.events import (
    Alarm,
    Finished,
    PhaseChanged,
    Prompt,
    SessionStarted,
    Telemetry,
)

STARTED = SessionStarted(
    -120, "contrast-quick", "Quick contrast", 1080, {"heat": "Pad (C0:DE)"}, True, 60
)


def test_live_view_lines_without_a_terminal() -> None:
    out = io.StringIO()
    view = LiveView(out, tty=False)
    view(STARTED)
    view(Prompt(-10, "Put the pad on.", 0))
    view(PhaseChanged(0, "heat", 180, 42, area="lower-back", index=0, count=6))
    view(Telemetry(1, "pad", plate_celsius=41.6))  # no status line without a terminal
    view(PhaseChanged(600, "off", 10, label="rest", index=3, count=6))
    view(Alarm(601, "high", "over-temperature", "Pad is at 46.0 °C.", "heat", "S4"))
    view(Finished(601, "aborted", "Pad is at 46.0 °C.", 600.0, devices_off=True))
    assert out.getvalue().splitlines() == [
        "Quick contrast (simulated devices) at x60: 18:00",
        "  devices: heat: Pad (C0:DE)",
        " -0:10  » Put the pad on.",
        "  0:00  HEAT 42 °C for 3:00 (1/6)",
        " 10:00  rest for 0:10 (4/6)",
        " 10:01  ALARM (high): Pad is at 46.0 °C.",
        " 10:01  session aborted (Pad is at 46.0 °C.); 10:00 of therapy delivered; "
        "every device is off.",
    ]


def test_live_view_status_line_in_a_terminal() -> None:
    out = io.StringIO()
    view = LiveView(out, tty=True)
    view(STARTED)
    view(PhaseChanged(0, "heat", 180, 42, index=0, count=6))
    view(Telemetry(90, "pad", plate_celsius=41.96))
    view(Telemetry(90, "gun", rpm=0))
    status = out.getvalue().rsplit("\r\x1b[2K", 1)[-1]
    assert status == "[##----------------------] 1:30/18:00  1:30 left in phase  pad plate 42.0 °C"


def test_a_session_that_could_not_confirm_off_says_so() -> None:
    out = io.StringIO()
    LiveView(out, tty=False)(Finished(5, "aborted", "link lost", 0.0, devices_off=False))
    assert "COULD NOT CONFIRM every device off" in out.getvalue()


def test_json_lines_have_type_and_t() -> None:
    out = io.StringIO()
    sink = JsonLines(out)
    sink(STARTED)
    sink(Finished(1080, "completed", None, 1080.0))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["type"] == "started"
    assert lines[0]["t"] == -120
    assert lines[-1] == {
        "type": "finished",
        "t": 1080,
        "outcome": "completed",
        "delivered_s": 1080.0,
        "devices_off": True,
        "recorded": True,
    }
