"""The health questions: the rules per condition, the answers on disk, `relieve health`, and the
check a session makes before it starts."""

from __future__ import annotations

import argparse
import fcntl
import io
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.cli import main
from controller.cli.health import NO_TERMINAL, ask_questions, interactive
from controller.health import (
    NOT_ANSWERED_NOTICE,
    QUESTIONS_NEEDED,
    HealthDecision,
    HealthFileError,
    check_health,
    health_path,
    load_answers,
    questions_answered,
    save_answers,
)
from controller.library import ProfileLibrary
from profiles.compiler import compile_plan
from profiles.errors import RelieveError
from profiles.health import (
    CONDITION_IDS,
    CONDITIONS,
    MODALITIES,
    NOT_A_MEDICAL_DEVICE,
    Condition,
    HealthError,
    HealthQuestionsNeededError,
    Modality,
    assess,
    check,
    condition,
    modalities_of,
    parse_answer,
)
from profiles.plan import Plan

RELIEVE = str(Path(sys.executable).parent / "relieve")
WHEN = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)

# What each condition rules out, written out here so a change to the table is a deliberate one.
EXPECTED: dict[str, tuple[set[str], set[str]]] = {  # id: (blocks, warns)
    "impaired-sensation": ({"heat", "cold"}, set()),
    "diabetic-neuropathy": ({"heat"}, set()),
    "dvt": ({"heat", "massage"}, set()),
    "peripheral-vascular-disease": ({"heat"}, set()),
    "open-wounds": ({"heat"}, set()),
    "cold-urticaria": ({"cold"}, set()),
    "raynauds": ({"cold"}, set()),
    "cryoglobulinaemia": ({"cold"}, set()),
    "anticoagulants": ({"massage"}, set()),
    "fracture": ({"massage"}, set()),
    "recent-surgery": ({"massage"}, set()),
    "cancer": ({"massage"}, set()),
    "pregnancy": ({"massage"}, set()),
    "severe-osteoporosis": ({"massage"}, set()),
    "scoliosis": (set(), {"massage"}),
}
BLOCKING = [c for c in CONDITIONS if c.blocks]


def all_no() -> dict[str, bool]:
    return dict.fromkeys(CONDITION_IDS, False)


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Plan]:
    """Every built-in profile, compiled for the default devices (one contrast pad, a gun)."""
    library = ProfileLibrary(tmp_path_factory.mktemp("config"))
    return {name: compile_plan(library.get(name), resolve=library.get) for name in library.all()}


# --- the rules (pure) ---------------------------------------------------------------------------


def test_the_table_is_the_list_of_conditions() -> None:
    assert tuple(EXPECTED) == CONDITION_IDS
    for cond in CONDITIONS:
        assert cond.question.endswith("?")
        assert cond.label
        assert cond.said.startswith("you ")


@pytest.mark.parametrize("cond", CONDITIONS, ids=CONDITION_IDS)
def test_each_condition_blocks_exactly_its_modalities(cond: Condition) -> None:
    entry = condition(cond.id)
    assert entry is cond
    blocks, warns = EXPECTED[entry.id]
    assert entry.blocks == blocks
    assert entry.warns == warns
    for modality in MODALITIES:
        yes = assess({modality}, {entry.id: True})
        assert bool(yes.blocks) == (modality in blocks), modality
        assert bool(yes.warnings) == (modality in warns), modality
        if modality in blocks:
            assert yes.refusal is not None
            assert "\n" not in yes.refusal
            assert yes.refusal.endswith("if it was a mistake.")
            assert f"`relieve health set {entry.id} no`" in yes.refusal
            assert f"which makes {'the massage gun' if modality == 'massage' else modality}" in (
                yes.refusal
            )
            with pytest.raises(HealthError) as raised:
                check({modality}, {entry.id: True})
            assert str(raised.value) == yes.refusal
            assert [(b.condition.id, b.modality) for b in raised.value.blocks] == [
                (entry.id, modality)
            ]
        else:
            assert yes.refusal is None
        no = assess({modality}, {entry.id: False})
        assert no.blocks == ()
        assert no.warnings == ()
        assert no.refusal is None


def test_the_refusal_is_one_sentence_naming_the_condition_and_the_modality(
    plans: dict[str, Plan],
) -> None:
    with pytest.raises(HealthError) as raised:
        check(plans["heat-soak"], {"diabetic-neuropathy": True})
    assert str(raised.value) == (
        "Heat is blocked: you said you have diabetic neuropathy, which makes heat unsafe (burns "
        "you may not feel); ask a clinician before using heat, and change the answer with "
        "`relieve health set diabetic-neuropathy no` if it was a mistake."
    )
    with pytest.raises(HealthError) as raised:
        check(plans["massage-lower-back"], {"anticoagulants": True})
    assert str(raised.value).startswith(
        "The massage gun is blocked: you said you take anticoagulants or have a bleeding "
        "disorder, which makes the massage gun unsafe ("
    )


def test_several_answers_that_block_are_counted_in_the_same_sentence(
    plans: dict[str, Plan],
) -> None:
    answers = {"impaired-sensation": True, "raynauds": True, "dvt": True}
    with pytest.raises(HealthError) as raised:
        check(plans["contrast-lower-back"], answers)
    message = str(raised.value)
    assert message.startswith("Contrast is blocked: you said you have impaired sensation")
    assert message.endswith("; 2 other answers block it too (`relieve health show`).")
    assert "\n" not in message
    assert {(b.condition.id, b.modality) for b in raised.value.blocks} == {
        ("impaired-sensation", "heat"),
        ("impaired-sensation", "cold"),
        ("dvt", "heat"),
        ("raynauds", "cold"),
    }


def test_the_modalities_of_each_builtin_plan(plans: dict[str, Plan]) -> None:
    expected: dict[str, set[Modality]] = {
        "cold-pack-acute": {"cold"},
        "contrast-lower-back": {"heat", "cold"},
        "contrast-quick": {"heat", "cold"},
        "heat-soak": {"heat"},
        "massage-extended": {"massage"},
        "massage-lower-back": {"massage"},
        "routine-lower-back": {"heat", "cold", "massage"},
        "stretch-lower-back": set(),
    }
    assert {name: set(modalities_of(plan)) for name, plan in plans.items()} == expected


@pytest.mark.parametrize("cond", BLOCKING, ids=[c.id for c in BLOCKING])
def test_contrast_is_blocked_by_anything_that_blocks_heat_or_cold(
    cond: Condition, plans: dict[str, Plan]
) -> None:
    entry = cond
    blocked = bool(entry.blocks & {"heat", "cold"})
    for name in ("contrast-lower-back", "contrast-quick"):
        refusal = assess(plans[name], {entry.id: True}).refusal
        assert (refusal is not None) == blocked, name
        if refusal is not None:
            assert refusal.startswith("Contrast is blocked: ")


@pytest.mark.parametrize("cond", BLOCKING, ids=[c.id for c in BLOCKING])
def test_a_routine_is_blocked_when_any_of_its_parts_is(
    cond: Condition, plans: dict[str, Plan]
) -> None:
    entry = cond
    refusal = assess(plans["routine-lower-back"], {entry.id: True}).refusal
    assert refusal is not None
    assert refusal.startswith("This routine is blocked: ")
    assert assess(plans["stretch-lower-back"], {entry.id: True}).refusal is None


def test_separate_pads_and_passive_packs_count_too(tmp_path: Path) -> None:
    from profiles.plan import Capabilities

    library = ProfileLibrary(tmp_path)
    caps = Capabilities(heat="manual", cold="manual", combined=False, gun="manual")
    plan = compile_plan(library.get("routine-lower-back"), caps, resolve=library.get)
    assert modalities_of(plan) == {"heat", "cold", "massage"}


def test_scoliosis_warns_before_the_gun_and_blocks_nothing(plans: dict[str, Plan]) -> None:
    answers = {**all_no(), "scoliosis": True}
    for name, plan in plans.items():
        warnings = check(plan, answers)  # never raises
        if "massage" in modalities_of(plan):
            assert len(warnings) == 1, name
            assert "scoliosis" in warnings[0]
            assert "never on the spine itself" in warnings[0]
        else:
            assert warnings == (), name


def test_answers_that_are_missing_or_no_block_nothing(plans: dict[str, Plan]) -> None:
    for plan in plans.values():
        assert assess(plan, {}).refusal is None
        assert check(plan, all_no()) == ()


def test_answers_and_ids_are_refused_in_one_sentence_listing_the_valid_ones() -> None:
    assert parse_answer("yes") is True
    assert parse_answer(" N ") is False
    with pytest.raises(RelieveError) as raised:
        parse_answer("maybe")
    assert str(raised.value) == "'maybe' is not an answer to a health question; use yes or no."
    with pytest.raises(RelieveError) as raised:
        condition("dvtt")
    message = str(raised.value)
    assert message.startswith("'dvtt' is not one of the health questions; use one of: ")
    assert all(c in message for c in CONDITION_IDS)
    assert "\n" not in message


# --- the answers on disk ------------------------------------------------------------------------


def test_nothing_stored_means_never_answered_and_reading_creates_nothing(tmp_path: Path) -> None:
    config = tmp_path / "config"
    assert not questions_answered(config)
    stored = load_answers(config)
    assert stored.answers == {}
    assert not stored.answered
    assert stored.unanswered == CONDITION_IDS
    assert not config.exists()


def test_answers_round_trip_with_when_they_were_given(tmp_path: Path) -> None:
    first = save_answers(tmp_path, {"dvt": True, "scoliosis": False}, now=lambda: WHEN)
    assert first.path == tmp_path / "health.json"
    loaded = load_answers(tmp_path)
    assert loaded.flags == {"dvt": True, "scoliosis": False}
    assert loaded.answers["dvt"].answered_at == WHEN
    assert not loaded.answered
    assert loaded.answered_at is None
    assert not questions_answered(tmp_path)

    later = datetime(2025, 3, 5, 8, 0, tzinfo=UTC)
    rest = {c: False for c in CONDITION_IDS if c not in ("dvt", "scoliosis")}
    save_answers(tmp_path, rest, now=lambda: later)
    loaded = load_answers(tmp_path)
    assert loaded.answered
    assert questions_answered(tmp_path)
    assert loaded.answered_at == later
    assert loaded.answers["dvt"].answered_at == WHEN  # the others are kept as they were
    assert loaded.flags == {**all_no(), "dvt": True}

    document = json.loads((tmp_path / "health.json").read_text())
    assert document["format"] == 1
    assert document["answers"]["dvt"] == {"answer": "yes", "answered_at": WHEN.isoformat()}


def test_the_file_is_readable_by_the_user_only(tmp_path: Path) -> None:
    path = health_path(tmp_path)
    path.write_text('{"format": 1, "answers": {}}')
    path.chmod(0o644)
    save_answers(tmp_path, {"dvt": False})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    save_answers(tmp_path / "new", {"dvt": False})
    assert stat.S_IMODE(health_path(tmp_path / "new").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


def test_a_write_replaces_the_file_in_one_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_answers(tmp_path, {"dvt": True})
    path = health_path(tmp_path)
    before = path.read_bytes()
    inode = path.stat().st_ino

    # a failure while writing leaves the old file as it was, and no temporary file behind
    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(HealthFileError) as raised:
        save_answers(tmp_path, {"dvt": False})
    assert str(raised.value) == (
        f"relieve could not save your health answers in {path} (No space left on device); "
        "nothing was changed: check that the directory exists and is writable."
    )
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["health.json"]
    monkeypatch.undo()

    # a successful write is a new file renamed over the old one, never the old one rewritten
    save_answers(tmp_path, {"dvt": False})
    assert path.stat().st_ino != inode
    assert load_answers(tmp_path).flags == {"dvt": False}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["health.json"]


def test_a_save_waits_for_another_relieve_saving_answers(tmp_path: Path) -> None:
    # Each save holds an exclusive lock on the config directory while it reads, changes and
    # writes the file, so two relieve processes answering at once never lose an answer. Hold
    # that lock here, as another process would, and the save waits for it.
    save_answers(tmp_path, {"raynauds": True})
    fd = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    saving = threading.Thread(target=save_answers, args=(tmp_path, {"dvt": False}))
    try:
        saving.start()
        saving.join(timeout=0.3)
        assert saving.is_alive()
        assert load_answers(tmp_path).flags == {"raynauds": True}
    finally:
        os.close(fd)
    saving.join(timeout=10)
    assert not saving.is_alive()
    assert load_answers(tmp_path).flags == {"raynauds": True, "dvt": False}


DAMAGED = {
    "not json": (b'{"format": 1, "answers": {', "not valid JSON at line 1"),
    "not text": (b"\xff\xfe\x00garbage", "not text"),
    "a list": (b"[]", "no list of answers in it"),
    "no answers": (b'{"format": 1}', "no list of answers in it"),
    "no format": (b'{"answers": {}}', "its format is missing"),
    "huge": (b'{"format": 1, "answers": {}, "x": "' + b"a" * 70_000 + b'"}', "larger than"),
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_file_is_one_sentence_and_is_never_overwritten(
    tmp_path: Path, content: tuple[bytes, str]
) -> None:
    data, reason = content
    path = health_path(tmp_path)
    path.write_bytes(data)
    for attempt in (
        lambda: load_answers(tmp_path),
        lambda: questions_answered(tmp_path),
        lambda: save_answers(tmp_path, {"dvt": False}),
        lambda: save_answers(tmp_path, dict.fromkeys(CONDITION_IDS, False)),
    ):
        with pytest.raises(HealthFileError) as raised:
            attempt()
        message = str(raised.value)
        assert message.startswith(f"Your health answers in {path} are damaged ({reason}")
        assert message.endswith("or move it away and answer again with `relieve health`.")
        assert "\n" not in message
    assert path.read_bytes() == data


def test_a_file_from_a_newer_relieve_is_left_alone(tmp_path: Path) -> None:
    path = health_path(tmp_path)
    path.write_text('{"format": 2, "answers": {}}')
    with pytest.raises(HealthFileError) as raised:
        save_answers(tmp_path, {"dvt": False})
    assert str(raised.value) == (
        f"Your health answers in {path} were written by a newer relieve (format 2); update "
        "relieve to use them."
    )
    assert path.read_text() == '{"format": 2, "answers": {}}'


def test_a_damaged_answer_is_named_and_answering_it_again_keeps_the_others(
    tmp_path: Path,
) -> None:
    save_answers(tmp_path, {"raynauds": True, "fracture": False}, now=lambda: WHEN)
    path = health_path(tmp_path)
    document = json.loads(path.read_text())
    document["answers"]["dvt"] = {"answer": "perhaps", "answered_at": WHEN.isoformat()}
    document["answers"]["a-question-of-a-newer-relieve"] = {"answer": "no"}
    path.write_text(json.dumps(document))

    with pytest.raises(HealthFileError) as raised:
        load_answers(tmp_path)
    assert str(raised.value) == (
        f"Your answer to dvt in {path} is damaged (the answer is not yes or no); relieve left "
        "the file as it is: answer it again with `relieve health set dvt yes|no`."
    )
    with pytest.raises(HealthFileError):  # answering another question does not hide it
        save_answers(tmp_path, {"cancer": False})

    save_answers(tmp_path, {"dvt": False})
    assert load_answers(tmp_path).flags == {"raynauds": True, "fracture": False, "dvt": False}
    kept = json.loads(path.read_text())["answers"]
    assert kept["a-question-of-a-newer-relieve"] == {"answer": "no"}


def test_a_file_that_cannot_be_read_is_one_sentence(tmp_path: Path) -> None:
    health_path(tmp_path).mkdir()  # works as root too, unlike a chmod
    with pytest.raises(HealthFileError) as raised:
        load_answers(tmp_path)
    message = str(raised.value)
    assert message.startswith(f"relieve cannot read your health answers in {tmp_path}")
    assert message.endswith("; check the file and its permissions.")


def test_a_config_dir_that_cannot_be_made_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HealthFileError) as raised:
        save_answers(blocker / "config", {"dvt": False})
    assert str(raised.value).startswith("relieve could not save your health answers in ")


def test_an_unknown_condition_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(RelieveError, match="is not one of the health questions"):
        save_answers(tmp_path, {"dvt": True, "gout": True})
    assert not health_path(tmp_path).exists()


# --- relieve health set / show ------------------------------------------------------------------


def test_set_and_show_json_through_the_cli(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health", "set", "dvt", "yes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"dvt: yes (blocks heat and the massage gun); saved in {config_dir}")
    assert "14 questions still have no answer" in out

    assert main(["health", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["answered"] is False
    assert shown["answered_at"] is None
    assert shown["path"] == str(config_dir / "health.json")
    assert shown["notice"] == NOT_A_MEDICAL_DEVICE
    assert [c["id"] for c in shown["conditions"]] == list(CONDITION_IDS)
    dvt = next(c for c in shown["conditions"] if c["id"] == "dvt")
    assert dvt["answer"] == "yes"
    assert dvt["blocks"] == ["heat", "massage"]
    assert dvt["answered_at"] is not None
    assert next(c for c in shown["conditions"] if c["id"] == "raynauds")["answer"] is None
    assert shown["blocked"] == {
        "heat": ["dvt"],
        "cold": [],
        "contrast": ["dvt"],
        "massage": ["dvt"],
    }
    assert shown["warnings"] == []


def test_show_says_whether_the_questions_are_answered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "elsewhere"
    assert main(["--config-dir", str(config), "health", "show"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == NOT_A_MEDICAL_DEVICE
    assert lines[1] == (
        "Health questions: not answered yet (0 of 15); run `relieve health` before a session on "
        "real devices."
    )
    assert "  raynauds                     -    blocks cold" in lines

    save_answers(config, {**all_no(), "raynauds": True, "scoliosis": True})
    assert main(["--config-dir", str(config), "health", "show"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("Health questions: answered (last answer ")
    assert "  raynauds                     yes  blocks cold" in out
    assert "  scoliosis                    yes  warns before the massage gun" in out
    assert "  contrast (heat and cold)  BLOCKED by Raynaud's" in out
    assert "  the massage gun           allowed" in out
    assert "  warning: You said you have scoliosis" in out
    assert not (config / "profiles").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["health", "set", "gout", "yes"], "relieve: 'gout' is not one of the health questions"),
        (["health", "set", "dvt", "maybe"], "relieve: 'maybe' is not an answer"),
    ],
)
def test_set_refuses_an_unknown_condition_or_answer_in_one_line(
    config_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(expected)
    assert err.count("\n") == 1
    assert not (config_dir / "health.json").exists()


def test_a_damaged_file_is_one_line_from_every_command(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (config_dir / "health.json").write_text("not json")
    for argv in (["health", "show"], ["health", "show", "--json"], ["health", "set", "dvt", "no"]):
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith("relieve: Your health answers in ")
        assert err.count("\n") == 1
    assert (config_dir / "health.json").read_text() == "not json"


# --- relieve health (the questions) -------------------------------------------------------------


class Answers:
    """An input function that answers the prompts from ``texts``, then reaches the end; it
    keeps the prompts it was shown."""

    def __init__(self, texts: list[str]) -> None:
        self._replies: Iterator[str] = iter(texts)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        try:
            return next(self._replies)
        except StopIteration:
            raise EOFError from None


def test_the_questions_come_after_the_notice_and_a_wrong_answer_is_asked_again() -> None:
    said: list[str] = []
    ask = Answers(["maybe", "y", "no", *["n"] * 13])
    answers = ask_questions(ask, said.append)
    assert said[0] == NOT_A_MEDICAL_DEVICE
    assert "Please answer y or n." in said
    prompts = ask.prompts
    assert len(prompts) == len(CONDITIONS) + 1
    assert prompts[0] == prompts[1]
    assert prompts[0].startswith("(1/15) Do you have numbness")
    assert prompts[0].endswith("[y/n] ")
    assert answers == {**all_no(), "impaired-sensation": True}


def test_the_questions_save_every_answer_and_say_what_is_blocked(tmp_path: Path) -> None:
    out = io.StringIO()
    replies = ["y" if c.id in ("diabetic-neuropathy", "scoliosis") else "n" for c in CONDITIONS]
    args = argparse.Namespace(config_dir=tmp_path)
    assert interactive(args, ask=Answers(replies), out=out, terminal=True) == 0
    stored = load_answers(tmp_path)
    assert stored.answered
    assert stored.flags == {**all_no(), "diabetic-neuropathy": True, "scoliosis": True}
    text = out.getvalue()
    assert text.startswith(NOT_A_MEDICAL_DEVICE)
    assert "  heat                      BLOCKED by diabetic neuropathy" in text
    assert "  contrast (heat and cold)  BLOCKED by diabetic neuropathy" in text
    assert "  cold                      allowed" in text
    assert "  warning: You said you have scoliosis" in text


def test_stopping_half_way_saves_nothing(tmp_path: Path) -> None:
    args = argparse.Namespace(config_dir=tmp_path)
    with pytest.raises(RelieveError) as raised:
        interactive(args, ask=Answers(["n", "n", "y"]), out=io.StringIO(), terminal=True)
    assert str(raised.value) == (
        "The health questions were not finished, so no answer was saved; run `relieve health` "
        "again to answer them."
    )
    assert not health_path(tmp_path).exists()


def test_without_a_terminal_the_questions_are_refused_in_one_line(
    config_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n" * 15))
    assert main(["health"]) == 1
    assert capsys.readouterr().err == f"relieve: {NO_TERMINAL}\n"
    assert not (config_dir / "health.json").exists()


def test_piped_answers_are_refused_by_the_console_script(config_dir: Path) -> None:
    result = subprocess.run(
        [RELIEVE, "health"],
        input="n\n" * 15,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "RELIEVE_CONFIG_DIR": str(config_dir)},
    )
    assert result.returncode == 1
    assert result.stderr == f"relieve: {NO_TERMINAL}\n"
    assert "health set CONDITION yes|no" in result.stderr
    assert not (config_dir / "health.json").exists()


# --- the check before a session -----------------------------------------------------------------

STATES = {
    "never answered": None,
    "answered, nothing": all_no(),
    "answered, raynauds": {**all_no(), "raynauds": True},
    "partly, raynauds": {"raynauds": True},
    "partly, nothing": {"raynauds": False, "dvt": False},
}


@pytest.mark.parametrize("simulated", [False, True], ids=["real", "simulated"])
@pytest.mark.parametrize("state", STATES, ids=list(STATES))
def test_check_health(tmp_path: Path, plans: dict[str, Plan], state: str, simulated: bool) -> None:
    answers = STATES[state]
    if answers is not None:
        save_answers(tmp_path, answers)
    plan = plans["contrast-lower-back"]
    flagged = bool(answers and answers.get("raynauds"))
    answered = answers is not None and set(answers) == set(CONDITION_IDS)

    if flagged:  # a yes that blocks: refused, real or simulated, answered or not
        with pytest.raises(HealthError) as raised:
            check_health(plan, tmp_path, simulated=simulated)
        assert not isinstance(raised.value, HealthQuestionsNeededError)
        assert str(raised.value).startswith("Contrast is blocked: you said you have Raynaud's")
    elif answered:
        assert check_health(plan, tmp_path, simulated=simulated) == HealthDecision()
    elif not simulated:
        with pytest.raises(HealthQuestionsNeededError) as needed:
            check_health(plan, tmp_path, simulated=simulated)
        assert str(needed.value) == (
            "Answer the health questions once before a session on real devices: run "
            "`relieve health` (it takes a minute)."
        )
        assert str(needed.value) == QUESTIONS_NEEDED
    else:
        decision = check_health(plan, tmp_path, simulated=simulated)
        assert decision.notices == (
            "The health questions are not answered yet; a session on real devices will ask "
            "them first (relieve health).",
        )
        assert decision.notices == (NOT_ANSWERED_NOTICE,)
        assert decision.warnings == ()


def test_answers_that_block_other_modalities_let_the_plan_run(
    tmp_path: Path, plans: dict[str, Plan]
) -> None:
    save_answers(tmp_path, {**all_no(), "raynauds": True, "dvt": True})
    assert check_health(plans["stretch-lower-back"], tmp_path, simulated=False) == HealthDecision()
    with pytest.raises(HealthError, match=r"^The massage gun is blocked: you said you have a deep"):
        check_health(plans["massage-lower-back"], tmp_path, simulated=False)


def test_check_health_passes_the_scoliosis_warning_on(
    tmp_path: Path, plans: dict[str, Plan]
) -> None:
    save_answers(tmp_path, {**all_no(), "scoliosis": True})
    decision = check_health(plans["massage-lower-back"], tmp_path, simulated=False)
    assert len(decision.warnings) == 1
    assert decision.warnings[0].startswith("You said you have scoliosis: ")
    assert decision.notices == ()
    simulated = check_health(plans["routine-lower-back"], tmp_path, simulated=True)
    assert simulated.warnings == decision.warnings
    assert check_health(plans["heat-soak"], tmp_path, simulated=False).warnings == ()


def test_a_fresh_machine_runs_the_demo_unattended_and_writes_nothing(
    config_dir: Path, plans: dict[str, Plan]
) -> None:
    # config_dir=None: the default directory, here $RELIEVE_CONFIG_DIR
    decision = check_health(plans["routine-lower-back"], None, simulated=True)
    assert decision.notices == (NOT_ANSWERED_NOTICE,)
    assert sorted(p.name for p in config_dir.iterdir()) == ["profiles"]
    with pytest.raises(HealthQuestionsNeededError):
        check_health(plans["routine-lower-back"], None, simulated=False)


def test_a_damaged_file_stops_simulated_sessions_too(
    tmp_path: Path, plans: dict[str, Plan]
) -> None:
    health_path(tmp_path).write_text("{")
    for simulated in (False, True):
        with pytest.raises(HealthFileError):
            check_health(plans["heat-soak"], tmp_path, simulated=simulated)
