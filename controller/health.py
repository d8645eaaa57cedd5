"""The health answers on disk, and the health check a session makes before it starts.

The answers live in ``<config dir>/health.json`` (``--config-dir`` / ``RELIEVE_CONFIG_DIR``, else
the user config directory), readable by the user only (mode 0600: it is health data). Every write
goes to a temporary file in the same directory and replaces the old file in one step, under a lock
on the directory, so a crash or a second relieve never leaves half a file or loses an answer. A
damaged file is never overwritten: relieve says so in one sentence and leaves it for the person.

The rules themselves (what each condition blocks) are pure, in :mod:`profiles.health`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.library import default_config_dir
from profiles.health import (
    CONDITION_IDS,
    HealthError,
    HealthQuestionsNeededError,
    check,
    condition,
)
from profiles.plan import Plan

__all__ = [
    "HEALTH_FILE",
    "NOT_ANSWERED_NOTICE",
    "QUESTIONS_NEEDED",
    "HealthAnswers",
    "HealthDecision",
    "HealthError",
    "HealthFileError",
    "HealthQuestionsNeededError",
    "StoredAnswer",
    "check_health",
    "health_path",
    "load_answers",
    "questions_answered",
    "save_answers",
]

HEALTH_FILE = "health.json"
FORMAT = 1
MAX_FILE_BYTES = 64 * 1024  # a complete file is about 2 kB; anything far larger is not ours

QUESTIONS_NEEDED = (
    "Answer the health questions once before a session on real devices: run `relieve health` "
    "(it takes a minute)."
)
NOT_ANSWERED_NOTICE = (
    "The health questions are not answered yet; a session on real devices will ask them first "
    "(relieve health)."
)

Now = Callable[[], datetime]


class HealthFileError(HealthError):
    """The health answers cannot be read or written; the file is left as it was."""


@dataclass(frozen=True)
class StoredAnswer:
    """One answer: yes (True) or no, and when it was given (timezone-aware)."""

    answer: bool
    answered_at: datetime


@dataclass(frozen=True)
class HealthAnswers:
    """The stored answers by condition id (only the questions relieve asks).

    ``answered`` is true once every question has an answer. ``path`` is the file they live in.
    """

    path: Path
    answers: Mapping[str, StoredAnswer] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return all(c in self.answers for c in CONDITION_IDS)

    @property
    def unanswered(self) -> tuple[str, ...]:
        return tuple(c for c in CONDITION_IDS if c not in self.answers)

    @property
    def flags(self) -> dict[str, bool]:
        """Condition id -> yes, for the answered questions (the rules' input)."""
        return {c: a.answer for c, a in self.answers.items()}

    @property
    def answered_at(self) -> datetime | None:
        """When the last answer was given, once every question has one."""
        if not self.answered:
            return None
        return max(a.answered_at for a in self.answers.values())


@dataclass(frozen=True)
class HealthDecision:
    """What a session may go ahead with: warnings (before the massage gun, for scoliosis) and
    notices (the questions are not answered yet) to show once before it starts."""

    warnings: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()


# --- reading -------------------------------------------------------------------------------------


@dataclass
class _Contents:
    """A file's contents: good answers, damaged entries (id -> what is wrong), and entries for
    questions this relieve does not ask (kept as they are, for a newer relieve)."""

    answers: dict[str, StoredAnswer] = field(default_factory=dict)
    damaged: dict[str, str] = field(default_factory=dict)
    unknown: dict[str, Any] = field(default_factory=dict)


def health_path(config_dir: Path | None = None) -> Path:
    """Where the answers are kept: ``<config dir>/health.json``."""
    return (config_dir if config_dir is not None else default_config_dir()) / HEALTH_FILE


def _damaged(path: Path, what: str) -> HealthFileError:
    return HealthFileError(
        f"Your health answers in {path} are damaged ({what}); relieve left the file as it is: "
        "fix it, or move it away and answer again with `relieve health`."
    )


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _parse_entry(value: Any) -> StoredAnswer | str:
    """One entry, ``{"answer": "yes"|"no", "answered_at": ISO 8601 with a zone}``, or what is
    wrong with it."""
    if not isinstance(value, dict):
        return "it is not an answer and a time"
    answer = value.get("answer")
    if answer not in ("yes", "no"):
        return "the answer is not yes or no"
    stamp = value.get("answered_at")
    try:
        answered_at = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        answered_at = None
    if answered_at is None or answered_at.tzinfo is None:
        return "the time it was answered is not a date and time with a zone"
    return StoredAnswer(answer == "yes", answered_at)


def _read_document(path: Path) -> dict[str, Any] | None:
    """The file as JSON (None when there is no file); raises for a file damaged as a whole."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HealthFileError(
            f"relieve cannot read your health answers in {path} ({_reason(exc)}); check the "
            "file and its permissions."
        ) from None
    if len(data) > MAX_FILE_BYTES:
        raise _damaged(path, f"larger than {MAX_FILE_BYTES // 1024} kB")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise _damaged(path, "not text") from None
    except json.JSONDecodeError as exc:
        raise _damaged(path, f"not valid JSON at line {exc.lineno}") from None
    if not isinstance(document, dict) or not isinstance(document.get("answers"), dict):
        raise _damaged(path, "no list of answers in it")
    version = document.get("format")
    if type(version) is not int:
        raise _damaged(path, "its format is missing")
    if version > FORMAT:
        raise HealthFileError(
            f"Your health answers in {path} were written by a newer relieve (format {version}); "
            "update relieve to use them."
        )
    if version < FORMAT:
        raise _damaged(path, f"format {version} is not one relieve knows")
    return document


def _read(path: Path) -> _Contents:
    """The file's contents (empty when there is none); raises for a file that is damaged as a
    whole, and reports damaged entries in :attr:`_Contents.damaged`."""
    document = _read_document(path)
    contents = _Contents()
    if document is None:
        return contents
    for key, value in document["answers"].items():
        if key not in CONDITION_IDS:
            contents.unknown[key] = value
            continue
        entry = _parse_entry(value)
        if isinstance(entry, str):
            contents.damaged[key] = entry
        else:
            contents.answers[key] = entry
    return contents


def _complete(path: Path, contents: _Contents, *, ignore: frozenset[str] = frozenset()) -> None:
    """Refuse damaged entries (except those in ``ignore``, about to be replaced)."""
    for key, problem in contents.damaged.items():
        if key not in ignore:
            raise HealthFileError(
                f"Your answer to {key} in {path} is damaged ({problem}); relieve left the file as "
                f"it is: answer it again with `relieve health set {key} yes|no`."
            )


def load_answers(config_dir: Path | None = None) -> HealthAnswers:
    """The stored answers (none when nothing was ever answered); :class:`HealthFileError` when
    the file cannot be read or any of it is damaged."""
    path = health_path(config_dir)
    contents = _read(path)
    _complete(path, contents)
    return HealthAnswers(path, contents.answers)


def questions_answered(config_dir: Path | None = None) -> bool:
    """Whether every health question has been answered (at some time, yes or no)."""
    return load_answers(config_dir).answered


# --- writing -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on the config directory for one read-change-write of the answers, so
    two relieve processes answering at once never lose each other's answers."""
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _document(contents: _Contents) -> dict[str, Any]:
    answers: dict[str, Any] = dict(contents.unknown)
    for key in CONDITION_IDS:
        if key in contents.answers:
            stored = contents.answers[key]
            answers[key] = {
                "answer": "yes" if stored.answer else "no",
                "answered_at": stored.answered_at.isoformat(timespec="seconds"),
            }
    return {"format": FORMAT, "answers": answers}


def _write_atomically(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` as JSON to ``path``: a 0600 temporary file beside it, flushed to disk,
    then renamed over it, so a reader sees the old file or the new one, never a part."""
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    fd, temp_name = tempfile.mkstemp(prefix=".health-", suffix=".tmp", dir=path.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save_answers(
    config_dir: Path | None, answers: Mapping[str, bool], *, now: Now | None = None
) -> HealthAnswers:
    """Store ``answers`` (condition id -> yes), each stamped with the time now, keeping every
    other stored answer; the answers as they are afterwards.

    An unknown condition id is refused before anything is written. A damaged entry is replaced
    only when it is one of ``answers``; a file damaged anywhere else is left as it is.
    """
    for key in answers:
        condition(key)  # one sentence listing the valid ids
    path = health_path(config_dir)
    stamp = (now or (lambda: datetime.now(UTC)))()
    if stamp.tzinfo is None:
        raise ValueError("the time of an answer needs a time zone")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _locked(path.parent):
            contents = _read(path)
            _complete(path, contents, ignore=frozenset(answers))
            for key, answer in answers.items():
                contents.answers[key] = StoredAnswer(bool(answer), stamp)
                contents.damaged.pop(key, None)
            _write_atomically(path, _document(contents))
    except OSError as exc:
        raise HealthFileError(
            f"relieve could not save your health answers in {path} ({_reason(exc)}); nothing was "
            "changed: check that the directory exists and is writable."
        ) from None
    return HealthAnswers(path, dict(contents.answers))


# --- the check before a session -------------------------------------------------------------------


def check_health(plan: Plan, config_dir: Path | None, *, simulated: bool) -> HealthDecision:
    """The health check before a session runs ``plan``.

    * A condition answered yes that blocks a modality of the plan raises :class:`HealthError`
      (one sentence), for real and simulated devices alike.
    * On real devices the questions must have been answered once: otherwise
      :class:`HealthQuestionsNeededError`. Nothing here answers them (``--yes`` does not either).
    * On simulated devices without the answers the session goes ahead, with one notice.

    A health file that cannot be read raises :class:`HealthFileError`, simulated or not: its
    answers may rule the session out.
    """
    stored = load_answers(config_dir)
    warnings = check(plan, stored.flags)
    if stored.answered:
        return HealthDecision(warnings=warnings)
    if not simulated:
        raise HealthQuestionsNeededError(QUESTIONS_NEEDED)
    return HealthDecision(warnings=warnings, notices=(NOT_ANSWERED_NOTICE,))
