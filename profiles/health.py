"""The health questions: conditions that make a modality unsafe, and what they rule out.

Pure: the table of conditions and the rules that turn a person's answers into a refusal or a
warning for a plan. Reading and writing the answers is :mod:`controller.health`'s job.

A condition *blocks* a modality (heat, cold, the massage gun) or only *warns* before it. Contrast
is heat and cold, so anything that blocks either blocks it; a routine is blocked when any of its
parts is. relieve is not a medical device: these questions do not replace a clinician's advice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from profiles.errors import RelieveError
from profiles.plan import Plan

__all__ = [
    "CONDITIONS",
    "CONDITION_IDS",
    "MODALITIES",
    "NOT_A_MEDICAL_DEVICE",
    "Assessment",
    "Block",
    "Condition",
    "HealthError",
    "HealthQuestionsNeededError",
    "Modality",
    "assess",
    "blocked_now",
    "check",
    "condition",
    "modalities_of",
    "modality_text",
    "parse_answer",
]

Modality = Literal["heat", "cold", "massage"]
MODALITIES: tuple[Modality, ...] = ("heat", "cold", "massage")

NOT_A_MEDICAL_DEVICE = (
    "relieve is not a medical device; these questions do not replace a clinician's advice."
)

# How a modality reads inside a sentence ("which makes heat unsafe").
_MODALITY_TEXT: dict[Modality, str] = {
    "heat": "heat",
    "cold": "cold",
    "massage": "the massage gun",
}

# What each phase mode and plan step puts on the body (pre-heat is heat, a gun's run is massage).
_MODALITY_OF: dict[str, Modality] = {
    "heat": "heat",
    "preheat": "heat",
    "cold": "cold",
    "precool": "cold",
    "massage": "massage",
    "run": "massage",
}


class HealthError(RelieveError):
    """A health answer rules this session out (or the answers are needed first).

    ``blocks`` names every condition and modality that rule it out (empty for the subclasses,
    which are about the answers rather than a condition).
    """

    def __init__(self, message: str, blocks: tuple[Block, ...] = ()) -> None:
        super().__init__(message)
        self.blocks = blocks


class HealthQuestionsNeededError(HealthError):
    """A session on real devices needs the health questions answered once first."""


@dataclass(frozen=True)
class Condition:
    """One health question.

    ``said`` completes "you said ..." in a refusal; ``why`` maps each modality the condition
    blocks to what could happen; ``warning`` is said before a modality in ``warns``.
    """

    id: str
    label: str
    question: str
    said: str
    why: Mapping[Modality, str] = field(default_factory=dict, compare=False)
    warns: frozenset[Modality] = frozenset()
    warning: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "why", MappingProxyType(dict(self.why)))  # the table is fixed
        if bool(self.warns) != bool(self.warning):
            raise ValueError(f"{self.id}: a warning needs its text, and text needs a modality")
        if self.blocks & self.warns:
            raise ValueError(f"{self.id}: a modality is either blocked or warned about")

    @property
    def blocks(self) -> frozenset[Modality]:
        """The modalities this condition rules out."""
        return frozenset(self.why)


CONDITIONS: tuple[Condition, ...] = (
    Condition(
        id="impaired-sensation",
        label="impaired sensation",
        question=(
            "Do you have numbness, or reduced feeling of heat, cold or touch, where you would "
            "use relieve (impaired sensation)?"
        ),
        said="you have impaired sensation",
        why={"heat": "burns you may not feel", "cold": "cold injury you may not feel"},
    ),
    Condition(
        id="diabetic-neuropathy",
        label="diabetic neuropathy",
        question=(
            "Do you have diabetic neuropathy (nerve damage from diabetes, often numb or "
            "tingling feet or legs)?"
        ),
        said="you have diabetic neuropathy",
        why={"heat": "burns you may not feel"},
    ),
    Condition(
        id="dvt",
        label="deep vein thrombosis (DVT)",
        question=(
            "Do you have, or are you being treated for, a blood clot in a deep vein (deep vein "
            "thrombosis, DVT)?"
        ),
        said="you have a deep vein thrombosis (DVT)",
        why={
            "heat": "more blood flow could loosen the clot",
            "massage": "the gun's blows could loosen the clot",
        },
    ),
    Condition(
        id="peripheral-vascular-disease",
        label="peripheral vascular disease",
        question=(
            "Do you have peripheral vascular disease (poor circulation in the legs or arms, "
            "narrowed arteries)?"
        ),
        said="you have peripheral vascular disease",
        why={"heat": "poor circulation cannot carry the heat away, so skin burns sooner"},
    ),
    Condition(
        id="open-wounds",
        label="open wounds",
        question="Do you have an open wound or broken skin where a pad would go?",
        said="you have open wounds",
        why={"heat": "heat on broken skin can burn it and invite infection"},
    ),
    Condition(
        id="cold-urticaria",
        label="cold urticaria",
        question="Do you get hives or itchy welts from cold (cold urticaria)?",
        said="you have cold urticaria",
        why={"cold": "cold can bring on hives and, over a large area, a severe reaction"},
    ),
    Condition(
        id="raynauds",
        label="Raynaud's",
        question="Do your fingers or toes turn white or blue in the cold (Raynaud's)?",
        said="you have Raynaud's",
        why={"cold": "cold can shut off the blood flow to the skin"},
    ),
    Condition(
        id="cryoglobulinaemia",
        label="cryoglobulinaemia",
        question=(
            "Have you been told you have cryoglobulinaemia (proteins in the blood that clump "
            "in the cold)?"
        ),
        said="you have cryoglobulinaemia",
        why={"cold": "cold can make proteins in the blood clump and block small vessels"},
    ),
    Condition(
        id="anticoagulants",
        label="anticoagulants or a bleeding disorder",
        question=(
            "Do you take blood thinners (anticoagulants such as warfarin or apixaban), or do you "
            "have a bleeding disorder such as haemophilia?"
        ),
        said="you take anticoagulants or have a bleeding disorder",
        why={"massage": "the gun can cause bleeding under the skin and deep bruising"},
    ),
    Condition(
        id="fracture",
        label="a fracture",
        question="Do you have a broken bone that is still healing?",
        said="you have a fracture",
        why={"massage": "the gun's blows can disturb a healing bone"},
    ),
    Condition(
        id="recent-surgery",
        label="recent surgery",
        question="Have you had an operation recently, with tissue or a scar still healing?",
        said="you had surgery recently",
        why={"massage": "the gun's blows can harm tissue that is still healing"},
    ),
    Condition(
        id="cancer",
        label="cancer",
        question="Do you have cancer, or are you being treated for it?",
        said="you have cancer",
        why={"massage": "massage near a tumour needs a clinician's agreement first"},
    ),
    Condition(
        id="pregnancy",
        label="pregnancy",
        question="Are you pregnant?",
        said="you are pregnant",
        why={
            "massage": "relieve's massage works the lower back, where a massage gun is advised "
            "against in pregnancy"
        },
    ),
    Condition(
        id="severe-osteoporosis",
        label="severe osteoporosis",
        question="Do you have severe osteoporosis (fragile bones that break easily)?",
        said="you have severe osteoporosis",
        why={"massage": "the gun's blows can break fragile bones"},
    ),
    Condition(
        id="scoliosis",
        label="scoliosis",
        question="Do you have scoliosis (a sideways curve of the spine)?",
        said="you have scoliosis",
        warns=frozenset({"massage"}),
        warning=(
            "You said you have scoliosis: keep the massage gun on the muscles beside the spine, "
            "never on the spine itself, start at the lowest speed and stop if it hurts."
        ),
    ),
)

CONDITION_IDS: tuple[str, ...] = tuple(c.id for c in CONDITIONS)
_BY_ID: dict[str, Condition] = {c.id: c for c in CONDITIONS}


def condition(condition_id: str) -> Condition:
    """The condition with this id; one sentence listing the valid ids when there is none."""
    try:
        return _BY_ID[condition_id]
    except KeyError:
        raise RelieveError(
            f"'{condition_id}' is not one of the health questions; use one of: "
            f"{', '.join(CONDITION_IDS)}."
        ) from None


def parse_answer(text: str) -> bool:
    """``yes`` / ``no`` (or ``y`` / ``n``, any case) as True / False; anything else refused."""
    answer = text.strip().lower()
    if answer in ("yes", "y"):
        return True
    if answer in ("no", "n"):
        return False
    raise RelieveError(f"'{text}' is not an answer to a health question; use yes or no.")


def modality_text(modality: Modality) -> str:
    """The modality inside a sentence: ``heat``, ``cold``, ``the massage gun``."""
    return _MODALITY_TEXT[modality]


def modalities_of(plan: Plan) -> frozenset[Modality]:
    """Heat, cold and massage that ``plan`` puts on the body (its phases and its steps)."""
    used = [p.mode for p in plan.phases] + [s.action for s in plan.steps]
    return frozenset(_MODALITY_OF[x] for x in used if x in _MODALITY_OF)


@dataclass(frozen=True)
class Block:
    """A condition answered yes that rules out a modality."""

    condition: Condition
    modality: Modality

    @property
    def reason(self) -> str:
        return self.condition.why[self.modality]


@dataclass(frozen=True)
class Assessment:
    """What the answers say about a plan: ``refusal`` is None when nothing blocks it."""

    blocks: tuple[Block, ...]
    warnings: tuple[str, ...]
    refusal: str | None


def _subject(kind: str | None, modality: Modality) -> str:
    if kind == "contrast":
        return "Contrast"
    if kind == "routine":
        return "This routine"
    text = modality_text(modality)
    return text[0].upper() + text[1:]


def _refusal(blocks: tuple[Block, ...], kind: str | None) -> str:
    first = blocks[0]
    mod = modality_text(first.modality)
    sentence = (
        f"{_subject(kind, first.modality)} is blocked: you said {first.condition.said}, which "
        f"makes {mod} unsafe ({first.reason}); ask a clinician before using {mod}, and change "
        f"the answer with `relieve health set {first.condition.id} no` if it was a mistake"
    )
    others = len({b.condition.id for b in blocks} - {first.condition.id})
    if others:
        answers = "answer blocks" if others == 1 else "answers block"
        sentence += f"; {others} other {answers} it too (`relieve health show`)"
    return sentence + "."


def assess(target: Plan | Iterable[Modality], answers: Mapping[str, bool]) -> Assessment:
    """What ``answers`` (condition id -> yes) say about a plan, or a set of modalities.

    Unanswered conditions (absent from ``answers``) neither block nor warn: whether the
    questions must be answered first is the caller's rule.
    """
    if isinstance(target, Plan):
        kind: str | None = target.kind
        used = modalities_of(target)
    else:
        kind = None
        used = frozenset(target)
    blocks: list[Block] = []
    warnings: list[str] = []
    for cond in CONDITIONS:
        if not answers.get(cond.id, False):
            continue
        blocks.extend(Block(cond, m) for m in MODALITIES if m in used and m in cond.blocks)
        if cond.warns & used:
            warnings.append(cond.warning)
    refusal = _refusal(tuple(blocks), kind) if blocks else None
    return Assessment(tuple(blocks), tuple(warnings), refusal)


def check(target: Plan | Iterable[Modality], answers: Mapping[str, bool]) -> tuple[str, ...]:
    """The warnings for ``target``; raises :class:`HealthError` (one sentence) when blocked."""
    assessment = assess(target, answers)
    if assessment.refusal is not None:
        raise HealthError(assessment.refusal, assessment.blocks)
    return assessment.warnings


def blocked_now(answers: Mapping[str, bool]) -> dict[str, tuple[Condition, ...]]:
    """What the answers rule out: heat, cold, contrast (heat and cold) and the massage gun,
    each with the conditions answered yes that rule it out (empty when it is allowed)."""
    flagged = [c for c in CONDITIONS if answers.get(c.id, False)]
    return {
        "heat": tuple(c for c in flagged if "heat" in c.blocks),
        "cold": tuple(c for c in flagged if "cold" in c.blocks),
        "contrast": tuple(c for c in flagged if c.blocks & {"heat", "cold"}),
        "massage": tuple(c for c in flagged if "massage" in c.blocks),
    }
