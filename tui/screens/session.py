"""The session screen: what runs, how long is left, the temperatures, prompts and alarms.

Events arrive through :class:`SessionScreen.Changed` messages posted by the app's subscriber:
phase changes, alarms, prompts and the end redraw at once; telemetry redraws at most
:data:`REDRAWS_PER_S` times a second (pending telemetry messages replace each other).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Digits, Footer, ProgressBar, Sparkline, Static

from controller.daemon.client import RemoteSession
from controller.session.service import Session
from tui.model import SessionModel, clock_text

__all__ = ["REDRAWS_PER_S", "SessionScreen"]

REDRAWS_PER_S = 10
TICK_S = 0.5  # real seconds between redraws of the countdown while time runs (finite speeds)
TIMELINE_WIDTH = 136  # two lines of an 80-column screen, less the room lost at breaks
_MARK = {"done": "✓ ", "now": "▶ ", "next": ""}


class SessionScreen(Screen[None]):
    """One session, from "getting ready" to its summary."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_pause", "Pause/resume"),
        Binding("s", "stop", "Stop"),
        Binding("e", "emergency_stop", "E-stop"),
        Binding("a", "acknowledge", "Ack alarm"),
        Binding("escape", "back", "Back", show=False),
    ]

    class Changed(Message):
        """The model changed; ``urgent``: redraw now (not only telemetry)."""

        def __init__(self, urgent: bool) -> None:
            super().__init__()
            self.urgent = urgent
            self.at = time.monotonic()  # when the event came (real time)

        def can_replace(self, message: Message) -> bool:
            # a telemetry redraw may be dropped for any redraw that follows it
            return not self.urgent and isinstance(message, SessionScreen.Changed)

    def __init__(self, model: SessionModel) -> None:
        super().__init__()
        self.model = model
        # in this process, or in the node daemon (the same controls; no plan: the daemon has it)
        self.session: Session | RemoteSession | None = None
        # the app's stop (reason, emergency): it also ends a start the node daemon has not
        # begun yet; None: the session's own stop
        self.stopper: Callable[[str, bool], None] | None = None
        self.redraws = 0  # how many times the screen was redrawn (tests count them)
        self._last_redraw = 0.0
        self._pending: Timer | None = None
        self._seen_prompt: object = None
        self._last_event_real = time.monotonic()

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield Static(id="title")
            yield Static(id="badge")
        yield Static(id="devices")
        yield Static(id="timeline")
        with Horizontal(id="clock"):
            yield Digits("--:--", id="countdown")
            with Vertical(id="phase-box"):
                yield Static(id="phase")
                yield ProgressBar(id="progress", show_eta=False)
                yield Static(id="elapsed")
        for row in ("thermal-0", "thermal-1", "skin"):
            with Horizontal(classes="thermal", id=row):
                yield Static(classes="thermal-text")
                yield Sparkline([], classes="thermal-spark")
        yield Static(id="gun")
        yield Static(id="prompt")
        yield Static(id="notice")
        yield Static(id="banner")
        yield Static(id="summary")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.set_interval(TICK_S, self._tick)
        self.redraw()

    # --- events ------------------------------------------------------------------------------

    def on_session_screen_changed(self, message: SessionScreen.Changed) -> None:
        self._last_event_real = message.at
        self._request_redraw(urgent=message.urgent)

    def _request_redraw(self, *, urgent: bool) -> None:
        if urgent:
            self.redraw()
            return
        wait = 1 / REDRAWS_PER_S - (time.monotonic() - self._last_redraw)
        if wait <= 0:
            self.redraw()
        elif self._pending is None:
            self._pending = self.set_timer(wait, self._flush)

    def _flush(self) -> None:
        self._pending = None
        self.redraw()

    def _tick(self) -> None:
        speed = self.model.speed
        if self.model.state == "running" and speed != float("inf"):
            self._request_redraw(urgent=False)  # the countdown runs on between events

    def notice(self, text: str) -> None:
        """A warning from the service before the session starts."""
        self.model.notice = text
        self.post_message(SessionScreen.Changed(urgent=True))  # (called before any event)

    # --- keys --------------------------------------------------------------------------------

    def action_toggle_pause(self) -> None:
        session = self.session
        if session is None or not session.running:
            return
        if session.paused:
            session.resume()
        else:
            session.pause("paused by you")

    def action_stop(self) -> None:
        if self.stopper is not None:
            self.stopper("stopped by you", False)
        elif self.session is not None:
            self.session.stop("stopped by you")

    def action_emergency_stop(self) -> None:
        if self.stopper is not None:
            self.stopper("emergency stop", True)
        elif self.session is not None:
            self.session.emergency_stop()

    def action_acknowledge(self) -> None:
        if self.model.acknowledge():
            self.redraw()

    def action_back(self) -> None:
        """A finished session goes back to the home screen, when it came from there."""
        if self.session is None and len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    # --- drawing -----------------------------------------------------------------------------

    def now(self) -> float:
        """Session seconds now: the latest event's, run on at the clock's speed while running."""
        model = self.model
        speed = model.speed
        if model.state != "running" or speed == float("inf") or model.finished is not None:
            return model.t
        return model.t + (time.monotonic() - self._last_event_real) * speed

    def redraw(self) -> None:
        self.redraws += 1
        self._last_redraw = time.monotonic()
        model, now = self.model, self.now()
        self._prompt_heads_up()
        state = {"starting": "getting ready"}.get(model.state, model.state).upper()
        self._set("#title", f"{model.title or 'relieve'}  [{state}]")
        self._set("#badge", model.badge())
        devices = [Text(line) for line in model.device_lines()]
        self.query_one("#devices", Static).update(
            self._pack(devices, gap=3) if devices else Text("Finding the devices...")
        )
        self.query_one("#timeline", Static).update(self._timeline())
        remaining = model.remaining(now)
        self.query_one("#countdown", Digits).update(
            "--:--" if remaining is None else clock_text(remaining)
        )
        self._set("#phase", model.phase_text())
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=model.total_s or None, progress=model.progress(now))
        self._set("#elapsed", f"{clock_text(max(now, 0.0))} of {clock_text(model.total_s)}")
        self._thermals()
        self._set("#gun", model.gun_line(now))
        self._set("#prompt", model.prompt_line(now))
        self._set("#notice", model.notice)
        self._set("#banner", model.banner())
        self._set("#summary", model.summary())

    def _prompt_heads_up(self) -> None:
        prompt = self.model.prompt
        if prompt is not None and prompt is not self._seen_prompt:
            self._seen_prompt = prompt
            self.app.bell()

    def _timeline(self) -> Text:
        before, shown, after = self.model.timeline_window(TIMELINE_WIDTH)
        parts = [Text(f"({before} done)", style="dim")] if before else []
        for label, where in shown:
            style = "bold reverse" if where == "now" else ("dim" if where == "done" else "")
            parts.append(Text(f"{_MARK[where]}{label}", style=style))
        if after:
            parts.append(Text(f"+{after} more", style="dim"))
        return self._pack(parts)

    def _pack(self, parts: list[Text], gap: int = 2) -> Text:
        """``parts`` in lines as wide as the screen, a line breaking only between parts."""
        width = self.size.width or 80
        out, used = Text(), 0
        for part in parts:
            if used and used + gap + part.cell_len > width:
                out.append("\n")
                used = 0
            elif used:
                out.append(" " * gap)
                used += gap
            out.append_text(part)
            used += part.cell_len
        return out

    def _thermals(self) -> None:
        model = self.model
        rows: list[tuple[str | None, list[float]]] = [(None, []), (None, [])]
        for i, thermal in enumerate(list(model.thermals.values())[:2]):
            rows[i] = (model.thermal_line(thermal), list(thermal.history))
        rows.append((model.skin_line(), list(model.skin_history)))
        for row_id, (line, history) in zip(("thermal-0", "thermal-1", "skin"), rows, strict=True):
            row = self.query_one(f"#{row_id}", Horizontal)
            row.display = line is not None
            if line is not None:
                row.query_one(".thermal-text", Static).update(Text(line))
                row.query_one(Sparkline).data = history

    def _set(self, selector: str, text: str | None) -> None:
        widget = self.query_one(selector, Static)
        widget.display = bool(text)
        widget.update(Text(text or ""))  # plain text: a "[PAUSED]" is not markup
