"""Errors a person can act on.

Every error relieve shows is one sentence that says what is wrong and what to do. ``RelieveError``
is the base of all of them (the CLI prints ``str(error)`` and exits non-zero, never a traceback).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LimitError", "ProfileError", "ProfileProblem", "RelieveError", "printable"]


class RelieveError(Exception):
    """Base class of every error relieve reports to a person."""


@dataclass(frozen=True)
class ProfileProblem:
    """One thing wrong with a profile.

    ``field`` is the dotted path inside the profile (``contrast.heat_minutes``,
    ``massage.areas[2].seconds``), empty for the file as a whole. ``limit_id`` names the safety
    limit (docs/safety.md) when a hard limit was broken.
    """

    source: str
    field: str
    message: str
    value: str | None = None
    limit_id: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = []
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        if where:
            parts.append(where)
        subject = self.field
        if self.value is not None:
            subject = f"{subject} = {self.value}" if subject else self.value
        if subject:
            parts.append(subject)
        message = self.message + (f" ({self.limit_id})" if self.limit_id else "")
        parts.append(message)
        return ": ".join(parts)


class ProfileError(RelieveError):
    """A profile could not be loaded: one or more problems, each its own sentence."""

    def __init__(self, problems: list[ProfileProblem]) -> None:
        if not problems:
            raise ValueError("ProfileError needs at least one problem")
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class LimitError(RelieveError):
    """A compiled plan (or a run-time request) would break a hard safety limit."""

    def __init__(self, limit_id: str, message: str) -> None:
        self.limit_id = limit_id
        super().__init__(message)


def printable(text: str, limit: int | None = None) -> str:
    """``text`` as it may appear inside a one-line message: every character that is not
    printable (a newline, a tab, a control or format character) written as its escape
    (``\\n``, ``\\x07``, ``\\u200b``), and, with ``limit``, cut to that many characters."""
    shown = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )
    if limit is not None and len(shown) > limit:
        shown = shown[: max(limit - 3, 0)] + "..."
    return shown
