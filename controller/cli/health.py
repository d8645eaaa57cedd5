"""``relieve health``: the health questions, asked once; ``health set`` and ``health show``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from controller.health import HealthAnswers, load_answers, save_answers
from profiles.errors import RelieveError
from profiles.health import (
    CONDITIONS,
    MODALITIES,
    NOT_A_MEDICAL_DEVICE,
    Condition,
    blocked_now,
    condition,
    modality_text,
    parse_answer,
)

__all__ = [
    "ask_questions",
    "interactive",
    "set_answer",
    "show",
    "summary_lines",
]

Ask = Callable[[str], str]
Say = Callable[[str], None]

# What `blocked_now` names, as a person reads it.
_WHAT = {
    "heat": "heat",
    "cold": "cold",
    "contrast": "contrast (heat and cold)",
    "massage": "the massage gun",
}

NO_TERMINAL = (
    "`relieve health` asks its questions in a terminal and there is none here; answer each one "
    "with `relieve health set CONDITION yes|no` instead (`relieve health show` lists them)."
)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _effect(cond: Condition) -> str:
    """What a yes to ``cond`` does: ``blocks heat and cold`` or ``warns before the massage
    gun``."""
    if cond.blocks:
        return "blocks " + _and([modality_text(m) for m in MODALITIES if m in cond.blocks])
    return "warns before " + _and([modality_text(m) for m in MODALITIES if m in cond.warns])


def summary_lines(flags: Mapping[str, bool]) -> list[str]:
    """What the answers block now (heat, cold, contrast, the massage gun), one line each, and
    the warnings of conditions answered yes."""
    width = max(len(w) for w in _WHAT.values())
    lines = []
    for key, conditions in blocked_now(flags).items():
        state = "allowed"
        if conditions:
            state = "BLOCKED by " + ", ".join(c.label for c in conditions)
        lines.append(f"  {_WHAT[key]:<{width}}  {state}")
    lines += [f"  warning: {c.warning}" for c in CONDITIONS if c.warns and flags.get(c.id, False)]
    return lines


# --- relieve health (the questions) --------------------------------------------------------------


def ask_questions(ask: Ask, say: Say) -> dict[str, bool]:
    """Ask every health question, after the notice that relieve is not a medical device; the
    answers by condition id. An answer other than y or n is asked again; the end of input
    (Ctrl-D) stops with one sentence, before anything is saved."""
    say(NOT_A_MEDICAL_DEVICE)
    say("Answer each question with y (yes) or n (no); relieve asks them once and keeps them.")
    answers: dict[str, bool] = {}
    for number, cond in enumerate(CONDITIONS, start=1):
        prompt = f"({number}/{len(CONDITIONS)}) {cond.question} [y/n] "
        while cond.id not in answers:
            try:
                text = ask(prompt)
            except EOFError:
                raise RelieveError(
                    "The health questions were not finished, so no answer was saved; run "
                    "`relieve health` again to answer them."
                ) from None
            try:
                answers[cond.id] = parse_answer(text)
            except RelieveError:
                say("Please answer y or n.")
    return answers


def interactive(
    args: argparse.Namespace,
    *,
    ask: Ask | None = None,
    out: TextIO | None = None,
    terminal: bool | None = None,
) -> int:
    """``relieve health``: ask the questions in a terminal, save the answers, say what is now
    blocked. Without a terminal, refuse and point to ``health set``."""
    out = out or sys.stdout
    if terminal is None:
        terminal = sys.stdin.isatty()
    if not terminal:
        raise RelieveError(NO_TERMINAL)

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    answers = ask_questions(ask or input, say)
    stored = save_answers(args.config_dir, answers)
    say(f"\nYour answers are saved in {stored.path}. What they block now:")
    for line in summary_lines(stored.flags):
        say(line)
    say(
        "Change an answer with `relieve health set CONDITION yes|no`; see them all with "
        "`relieve health show`."
    )
    return 0


# --- relieve health set CONDITION yes|no ---------------------------------------------------------


def set_answer(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """``relieve health set CONDITION yes|no``: store one answer, keep the others."""
    out = out or sys.stdout
    cond = condition(args.condition)
    answer = parse_answer(args.answer)
    stored = save_answers(args.config_dir, {cond.id: answer})
    effect = _effect(cond) if answer else "blocks nothing"
    out.write(f"{cond.id}: {'yes' if answer else 'no'} ({effect}); saved in {stored.path}.\n")
    if not stored.answered:
        missing = len(stored.unanswered)
        out.write(
            f"{missing} question{'s' if missing != 1 else ''} still "
            f"{'have' if missing != 1 else 'has'} no answer; sessions on real devices need them "
            "all (`relieve health`, or `relieve health set` for each).\n"
        )
    out.write("What the answers block now:\n")
    out.write("".join(line + "\n" for line in summary_lines(stored.flags)))
    return 0


# --- relieve health show [--json] ----------------------------------------------------------------


def _status(stored: HealthAnswers) -> str:
    if stored.answered_at is not None:
        when = stored.answered_at.astimezone().strftime("%Y-%m-%d %H:%M")
        return f"Health questions: answered (last answer {when}); kept in {stored.path}."
    done = len(CONDITIONS) - len(stored.unanswered)
    return (
        f"Health questions: not answered yet ({done} of {len(CONDITIONS)}); run `relieve health` "
        "before a session on real devices."
    )


def _show_json(stored: HealthAnswers) -> dict[str, Any]:
    flags = stored.flags
    conditions = []
    for cond in CONDITIONS:
        entry = stored.answers.get(cond.id)
        conditions.append(
            {
                "id": cond.id,
                "label": cond.label,
                "question": cond.question,
                "answer": None if entry is None else ("yes" if entry.answer else "no"),
                "answered_at": None if entry is None else entry.answered_at.isoformat(),
                "blocks": [m for m in MODALITIES if m in cond.blocks],
                "warns": [m for m in MODALITIES if m in cond.warns],
            }
        )
    return {
        "answered": stored.answered,
        "answered_at": None if stored.answered_at is None else stored.answered_at.isoformat(),
        "path": str(stored.path),
        "notice": NOT_A_MEDICAL_DEVICE,
        "conditions": conditions,
        "blocked": {key: [c.id for c in conds] for key, conds in blocked_now(flags).items()},
        "warnings": [c.warning for c in CONDITIONS if c.warns and flags.get(c.id, False)],
    }


def show(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """``relieve health show``: each question's answer and what it blocks, and whether the
    questions have been answered; ``--json`` for programs."""
    out = out or sys.stdout
    stored = load_answers(args.config_dir)
    if args.json:
        json.dump(_show_json(stored), out, indent=2, ensure_ascii=False)
        out.write("\n")
        return 0
    lines = [NOT_A_MEDICAL_DEVICE, _status(stored), ""]
    width = max(len(c.id) for c in CONDITIONS)
    for cond in CONDITIONS:
        entry = stored.answers.get(cond.id)
        answer = "-" if entry is None else ("yes" if entry.answer else "no")
        lines.append(f"  {cond.id:<{width}}  {answer:<3}  {_effect(cond)}")
    lines += ["", "What the answers block now:", *summary_lines(stored.flags)]
    out.write("\n".join(lines) + "\n")
    return 0
