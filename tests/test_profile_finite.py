"""Every number of a profile is finite and bounded before anything uses it.

TOML has ``nan``, ``inf`` and ``-inf``, and a literal such as ``1e400`` parses as infinity. Every
comparison with NaN is false, so a range check alone lets it through; the model refuses them all,
field by field, with one sentence that names the field -- through ``profiles validate``,
``profiles show`` and ``run`` alike, never with a traceback. Files too large or nested too deeply
are refused the same way.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.cli import main
from controller.library import load_file
from profiles.compiler import CapabilityError, compile_plan
from profiles.errors import LimitError, ProfileError
from profiles.limits import HARD, ON_ACTIONS, check_on_steps, check_plan_numbers
from profiles.models import Profile
from profiles.parse import MAX_PROFILE_BYTES, parse_profile
from profiles.plan import CONTRAST_PAD, Capabilities
from tests.profile_texts import COLD, CONTRAST, HEAT, MASSAGE, to_toml, with_value

RELIEVE = str(Path(sys.executable).parent / "relieve")

STRETCH = """
name = "my-stretch"
title = "My stretch"
kind = "stretch"

[stretch]
rounds = 2
rest_seconds = 10

[[stretch.holds]]
name = "hamstring"
seconds = 30

[[stretch.holds]]
name = "calf"
seconds = 30
"""

ROUTINE = """
name = "my-routine"
title = "My routine"
kind = "routine"
steps = ["massage-lower-back", "contrast-lower-back"]
"""

# (profile text, dotted path for with_value, the field as a message names it, what it is)
FIELDS: list[tuple[str, str, str, str]] = [
    (CONTRAST, "contrast.heat_minutes", "contrast.heat_minutes", "float"),
    (CONTRAST, "contrast.cold_minutes", "contrast.cold_minutes", "float"),
    (CONTRAST, "contrast.cycles", "contrast.cycles", "int"),
    (CONTRAST, "contrast.heat_celsius", "contrast.heat_celsius", "float"),
    (CONTRAST, "contrast.cold_celsius", "contrast.cold_celsius", "float"),
    (MASSAGE, "massage.minutes", "massage.minutes", "float"),
    (MASSAGE, "massage.rpm", "massage.rpm", "int"),
    (MASSAGE, "massage.areas.0.seconds", "massage.areas[0].seconds", "float"),
    (MASSAGE, "massage.areas.1.seconds", "massage.areas[1].seconds", "float"),
    (COLD, "cold.minutes", "cold.minutes", "float"),
    (COLD, "cold.celsius", "cold.celsius", "float"),
    (COLD, "cold.repeat_every_minutes", "cold.repeat_every_minutes", "float"),
    (COLD, "cold.for_hours", "cold.for_hours", "float"),
    (HEAT, "heat.minutes", "heat.minutes", "float"),
    (HEAT, "heat.celsius", "heat.celsius", "float"),
    (STRETCH, "stretch.rounds", "stretch.rounds", "int"),
    (STRETCH, "stretch.rest_seconds", "stretch.rest_seconds", "float"),
    (STRETCH, "stretch.holds.1.seconds", "stretch.holds[1].seconds", "float"),
    (ROUTINE, "steps", "steps[0]", "text"),
]
FIELD_IDS = [path for _, path, _, _ in FIELDS]

# How each kind of field refuses a value that is not a finite number.
EXPECTED_MESSAGE = {
    "float": "must be a finite number, not nan or infinity; write an ordinary number",
    "int": "must be a whole number",
    "text": "must be text in quotes",
}

# (TOML literal, how the message shows the value)
NON_FINITE = [("nan", "nan"), ("inf", "inf"), ("-inf", "-inf"), ("1e400", "inf")]
NON_FINITE_IDS = [literal for literal, _ in NON_FINITE]

_MARK = 123456.25  # a float written by to_toml as exactly this text, replaced by the literal


def text_with(base: str, path: str, literal: str) -> str:
    """``base`` with the field at ``path`` written as the TOML ``literal`` (a list's first item
    for ``steps``)."""
    value: Any = [_MARK] if path == "steps" else _MARK
    text = with_value(base, path, value)
    assert text.count(repr(_MARK)) == 1
    return text.replace(repr(_MARK), literal)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# --- the model, in-process --------------------------------------------------------------------


@pytest.mark.parametrize(("literal", "shown"), NON_FINITE, ids=NON_FINITE_IDS)
@pytest.mark.parametrize(("base", "path", "field", "kind"), FIELDS, ids=FIELD_IDS)
def test_a_non_finite_number_is_refused_naming_the_field(
    base: str, path: str, field: str, kind: str, literal: str, shown: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(text_with(base, path, literal), "mine.toml")

    [problem] = caught.value.problems
    assert problem.field == field
    assert problem.value == shown
    assert problem.message == EXPECTED_MESSAGE[kind]
    assert one_line(str(caught.value)) == (
        f"mine.toml: {field} = {shown}: {EXPECTED_MESSAGE[kind]}"
    )


@pytest.mark.parametrize(
    ("base", "path", "field"),
    [
        (CONTRAST, "contrast.cycles", "contrast.cycles"),
        (MASSAGE, "massage.rpm", "massage.rpm"),
        (STRETCH, "stretch.rounds", "stretch.rounds"),
        (HEAT, "heat.minutes", "heat.minutes"),
        (COLD, "cold.for_hours", "cold.for_hours"),
    ],
)
def test_huge_integers_are_refused_without_breaking_anything(
    base: str, path: str, field: str
) -> None:
    for value in (10**30, -(10**30), 10**400):
        with pytest.raises(ProfileError) as caught:
            parse_profile(with_value(base, path, value), "mine.toml")
        [problem] = caught.value.problems
        assert problem.field == field
        assert problem.value is not None
        assert len(problem.value) <= 40  # a value is shown, shortened when long
        one_line(str(caught.value))


def test_an_integer_too_long_for_python_to_read_is_one_sentence() -> None:
    text = HEAT.replace("minutes = 10", "minutes = " + "9" * 5000)
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "mine.toml")
    assert one_line(str(caught.value)).startswith("mine.toml: has a number with more than ")


def test_a_massage_visit_has_a_floor_so_the_plan_stays_small() -> None:
    # a visit of 1e-300 s passed "> 0" and left the compiler adding visits that never add up
    for seconds in (1e-300, 0.5, 4.99):
        with pytest.raises(ProfileError) as caught:
            parse_profile(with_value(MASSAGE, "massage.areas.0.seconds", seconds), "mine.toml")
        [problem] = caught.value.problems
        assert problem.field == "massage.areas[0].seconds"
        assert "at least 5 s" in problem.message


# --- files: too large, nested too deeply ------------------------------------------------------

DEEP = 100_000
HOSTILE_FILES = {
    "nested-arrays": "a = " + "[" * DEEP + "]" * DEEP + "\n",
    "nested-inline-tables": "x = " + "{a=" * DEEP + "1" + "}" * DEEP + "\n",
    "nested-steps": ROUTINE.replace(
        'steps = ["massage-lower-back", "contrast-lower-back"]',
        "steps = " + "[" * 1000 + "]" * 1000,
    ),
    "oversized": HEAT + "#" * MAX_PROFILE_BYTES + "\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
@pytest.mark.parametrize("command", ["validate", "show"])
def test_hostile_files_are_one_sentence(
    tmp_path: Path,
    config_dir: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    command: str,
) -> None:
    path = tmp_path / f"{name}.toml"
    path.write_text(HOSTILE_FILES[name])
    assert main(["profiles", command, str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    line = one_line(err)
    assert str(path) in line
    assert "Traceback" not in err


def test_a_valid_profile_over_the_maximum_size_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    with path.open("w") as file:  # a valid profile, padded with comments to 8 MiB
        file.write(HEAT)
        file.write(("#" * 1023 + "\n") * (8 * 1024))

    with pytest.raises(ProfileError) as caught:
        load_file(path)
    assert one_line(str(caught.value)) == (
        f"{path}: is larger than 1 MiB, far too large for a profile (a few hundred bytes); "
        "check that this is the profile you meant"
    )


# --- through the command line -----------------------------------------------------------------


@pytest.mark.parametrize(("literal", "shown"), NON_FINITE, ids=NON_FINITE_IDS)
@pytest.mark.parametrize(("base", "path", "field", "kind"), FIELDS, ids=FIELD_IDS)
def test_validate_show_and_run_refuse_it_in_one_line(
    tmp_path: Path,
    config_dir: Path,
    capsys: pytest.CaptureFixture[str],
    base: str,
    path: str,
    field: str,
    kind: str,
    literal: str,
    shown: str,
) -> None:
    file = tmp_path / "mine.toml"
    file.write_text(text_with(base, path, literal))
    expected = f"{file}: {field} = {shown}: {EXPECTED_MESSAGE[kind]}"
    data = str(tmp_path / "data")
    for argv, prefix in (
        (["profiles", "validate", str(file)], ""),
        (["profiles", "show", str(file)], "relieve: "),
        (["--data-dir", data, "run", str(file), "--simulate", "--yes"], "relieve: "),
    ):
        assert main(argv) == 1, argv
        out, err = capsys.readouterr()
        assert out == "", argv
        assert one_line(err) == prefix + expected, argv


@pytest.mark.parametrize(
    "argv",
    [
        ["profiles", "validate", "FILE"],
        ["profiles", "show", "FILE"],
        ["run", "FILE", "--simulate", "--yes"],
    ],
    ids=["validate", "show", "run"],
)
@pytest.mark.parametrize("literal", ["nan", "1e400"])
def test_the_console_script_says_it_in_one_line_without_a_traceback(
    tmp_path: Path, argv: list[str], literal: str
) -> None:
    file = tmp_path / "mine.toml"
    file.write_text(text_with(HEAT, "heat.minutes", literal))
    command = [RELIEVE, "--data-dir", str(tmp_path / "data")]
    command += [str(file) if arg == "FILE" else arg for arg in argv]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
        env={**os.environ, "RELIEVE_CONFIG_DIR": str(tmp_path / "config")},
    )
    assert result.returncode == 1
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert "heat.minutes = " in line
    assert "must be a finite number" in line
    assert "Traceback" not in result.stderr


# --- property: whatever is accepted compiles to ON steps that are finite and capped -----------

EXTREME = [math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1e-300, 1e308, -1e308, 1e16]


WILD = st.one_of(
    st.sampled_from(EXTREME), st.floats(), st.integers(min_value=-(10**30), max_value=10**30)
)


def sometimes_wild(near: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``near`` nine times in ten, else anything at all: NaN, infinities, the smallest and
    largest floats, huge integers."""
    return st.sampled_from(range(10)).flatmap(lambda i: WILD if i == 9 else near)


def number(low: float, high: float) -> st.SearchStrategy[Any]:
    """Mostly values in (or at the edge of) the field's range, so that many profiles are
    accepted; sometimes anything."""
    return sometimes_wild(
        st.one_of(
            st.floats(min_value=low, max_value=high),
            st.floats(min_value=low, max_value=high).map(lambda v: round(v, 2)),
            st.integers(min_value=math.ceil(low), max_value=math.floor(high)),
        )
    )


def whole(low: int, high: int) -> st.SearchStrategy[Any]:
    return sometimes_wild(st.integers(min_value=low, max_value=high))


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def without_none(table: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in table.items() if v is not None}


sections: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "contrast": st.fixed_dictionaries(
        {
            "heat_minutes": number(1, 5),
            "cold_minutes": number(1, 5),
            "cycles": whole(1, 3),
            "heat_celsius": number(34, 45),
            "cold_celsius": number(5, 25),
        }
    ),
    "massage": st.fixed_dictionaries(
        {
            "minutes": number(5, 15),
            "rpm": optional(whole(1000, 3616)),
            "explicit_top_speed": st.booleans(),
            "areas": st.lists(
                st.fixed_dictionaries({"seconds": number(5, 120)}), min_size=1, max_size=5
            ).map(lambda areas: [{"name": f"area-{i}", **a} for i, a in enumerate(areas)]),
        }
    ).map(without_none),
    "cold": st.fixed_dictionaries(
        {
            "minutes": number(0, 20),
            "celsius": optional(number(5, 25)),
            "repeat_every_minutes": optional(number(20, 200)),
            "for_hours": optional(number(0, 72)),
        }
    ).map(without_none),
    "heat": st.fixed_dictionaries({"minutes": number(0, 20), "celsius": number(34, 45)}),
    "stretch": st.fixed_dictionaries(
        {
            "rounds": whole(1, 5),
            "rest_seconds": number(0, 60),
            "holds": st.lists(
                st.fixed_dictionaries({"seconds": number(5, 120)}), min_size=1, max_size=4
            ).map(lambda holds: [{"name": f"hold {i}", **h} for i, h in enumerate(holds)]),
        }
    ),
}

single = st.sampled_from(sorted(sections)).flatmap(
    lambda kind: sections[kind].map(
        lambda table: {
            "name": f"my-{kind}",
            "title": kind,
            "kind": kind,
            **({} if kind == "stretch" else {"area": "knee"}),
            kind: table,
        }
    )
)

CAPABILITIES = [
    CONTRAST_PAD,
    Capabilities(combined=False),
    Capabilities(heat="levels", heat_levels=tuple(35.0 + n for n in range(1, 8))),
    Capabilities(heat="manual", cold="manual", gun="manual", combined=False),
]


def accepted(data: dict[str, Any]) -> Profile | None:
    """The profile written as TOML and read back, or None when it is refused (in sentences)."""
    try:
        return parse_profile(to_toml(data), "generated.toml")
    except ProfileError as exc:
        message = str(exc)
    assert message  # saying what is wrong never fails either
    return None


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    parts=st.lists(single, min_size=1, max_size=3),
    routine=st.booleans(),
    caps=st.sampled_from(CAPABILITIES),
    extended=st.booleans(),
)
def test_every_accepted_profile_compiles_to_finite_capped_on_steps(
    parts: list[dict[str, Any]], routine: bool, caps: Capabilities, extended: bool
) -> None:
    profiles = [p for p in (accepted(data) for data in parts) if p is not None]
    if not profiles:
        return
    by_name = {f"part-{i}": p for i, p in enumerate(profiles)}
    if routine:
        target = Profile.model_validate(
            {"name": "my-routine", "title": "r", "kind": "routine", "steps": sorted(by_name)}
        )
    else:
        target = profiles[0]
    try:
        plan = compile_plan(target, caps, resolve=by_name.__getitem__, extended=extended)
    except (CapabilityError, LimitError):
        return  # refused in a sentence: nothing to run
    assert check_plan_numbers(plan) == []
    assert check_on_steps(plan) == []
    on = [s for s in plan.steps if s.action in ON_ACTIONS]
    for step in on:
        assert math.isfinite(step.start_s)
        assert math.isfinite(step.duration_s)
        assert step.duration_s > 0
        assert step.duration_s <= HARD.on_step_max_s(step.action, extended=plan.extended) + 1e-6
        assert step.celsius is None or math.isfinite(step.celsius)
    assert math.isfinite(plan.total_s)
