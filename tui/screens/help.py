"""The help screen: every key and the safety notes."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["HELP_TEXT", "HelpScreen"]

HELP_TEXT = """\
Keys
  space     pause (every output OFF) / resume
  s         stop the session (every device OFF)
  e         emergency stop
  a         acknowledge an alarm
  ctrl+c    stop the session; with no session running, quit
  q         quit (during a session: asks, then stops it first)
  ? or f1   this help
  enter     home screen: start the selected profile
  escape    a finished session: back to the profiles

Safety
  relieve is not a medical device: follow your clinician's advice.
  Heat: a fabric layer between the pad and your skin; stay awake;
  never lie on the pad.
  Cold: a thin towel between the cold pad or pack and your skin.
  Massage gun: only the muscles beside the spine, never the spine.
  Any way out of relieve switches every output OFF first.

Press escape, q or ? to close."""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(HELP_TEXT, id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
