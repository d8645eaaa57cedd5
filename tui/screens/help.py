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
During a session                      Home screen
  space   pause (all OFF) / resume      enter   start the profile
  s       stop: every device OFF        d       devices and roles
  e       emergency stop                h       history and export
  a       acknowledge an alarm          a       health questions
  escape  (finished) back home          r       check again
Anywhere
  ctrl+c  stop the session; with none running, quit
  q       quit (during a session: asks, then stops it first)
  ctrl+p  commands: start a profile, scan, history, health
  ?       this help (also f1)

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
