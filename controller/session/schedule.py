"""From a plan to the ordered list of things the runner does when (pure).

Each :class:`Action` happens at an absolute offset from therapy time zero. At the same instant,
step ends come first (so a pad switching from heat to cold is not turned off in between), then
the phase change, then prompts, then step starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from profiles.limits import Limits
from profiles.plan import Phase, Plan, Step

__all__ = [
    "HEADS_UP_S",
    "MASSAGE_WARNING_S",
    "RUN_CAP_MARGIN_REAL_S",
    "RUN_CAP_MARGIN_S",
    "Action",
    "build_schedule",
    "gun_run_caps",
]

HEADS_UP_S = 10.0  # prompts are shown this long before they are due
MASSAGE_WARNING_S = 60.0  # the gun's hard stop is announced this long before it
SAME_INSTANT_S = 1e-6  # plan offsets closer than this are the same instant

ActionKind = Literal["end", "phase", "prompt", "notice", "start"]
_ORDER: dict[str, int] = {"end": 0, "phase": 1, "notice": 2, "prompt": 3, "start": 4}


@dataclass(frozen=True)
class Action:
    at: float  # seconds from time zero
    kind: ActionKind
    step: Step | None = None
    phase: Phase | None = None
    phase_index: int = -1
    text: str = ""
    due: float = 0.0

    @property
    def sort_key(self) -> tuple[float, int]:
        return (self.at, _ORDER[self.kind])


def _same_device(a: Step, b: Step, combined: bool) -> bool:
    if a.role == b.role:
        return True
    return combined and {a.role, b.role} == {"heat", "cold"}


def build_schedule(plan: Plan) -> list[Action]:
    """Every action of the plan from time zero on (pre-conditioning before zero is excluded:
    the runner starts those steps at once and waits for the devices to reach their targets)."""
    combined = plan.capabilities.combined
    actions: list[Action] = []
    device_steps = [s for s in plan.steps if s.role != "user" and not s.manual]
    for step in device_steps:
        if step.start_s >= 0:
            actions.append(Action(step.start_s, "start", step=step))
        followed = any(
            other is not step
            and _same_device(step, other, combined)
            and abs(other.start_s - step.end_s) < SAME_INSTANT_S
            for other in device_steps
        )
        if not followed:
            actions.append(Action(max(step.end_s, 0.0), "end", step=step))
    for index, phase in enumerate(plan.phases):
        actions.append(Action(phase.start_s, "phase", phase=phase, phase_index=index))
    for step in plan.steps:
        if step.action == "prompt" and step.text:
            shown = max(step.start_s - HEADS_UP_S, 0.0) if step.start_s > 0 else step.start_s
            actions.append(Action(max(shown, 0.0), "prompt", text=step.text, due=step.start_s))
    actions.extend(
        Action(
            end - MASSAGE_WARNING_S,
            "notice",
            text="One minute left: the gun stops at the session's limit (M1).",
        )
        for end in _massage_ends(plan)
        if end - MASSAGE_WARNING_S > 0
    )
    actions.append(Action(plan.total_s, "phase", phase=None, phase_index=len(plan.phases)))
    return sorted(actions, key=lambda a: a.sort_key)


def _massage_ends(plan: Plan) -> list[float]:
    ends: dict[str, float] = {}
    for phase in plan.phases:
        if phase.mode == "massage":
            ends[phase.profile] = phase.end_s
    return sorted(ends.values())


# A gun's own run cap is this far past the host's stop (clock seconds); under a scaled clock at
# least RUN_CAP_MARGIN_REAL_S of real time, so jitter does not let the backstop win the race.
RUN_CAP_MARGIN_S = 2.0
RUN_CAP_MARGIN_REAL_S = 0.5


def gun_run_caps(plan: Plan, margin_s: float, limits: Limits) -> dict[int, float]:
    """id(step) -> the device-side run cap of each gun step: the length of its back-to-back
    block of steps (the gun runs a block as one run, and the cap counts from its first START)
    plus ``margin_s``, never beyond the longest run M1 allows (18 minutes). The host stops the
    gun at the block's end; the gun's own cap is the backstop behind it and should not race
    that stop (a cap of exactly the session's length could stop a 15-minute session a moment
    early, as a fault). Only the 18-minute extension has no room for the margin."""
    caps: dict[int, float] = {}
    steps = sorted(
        (s for s in plan.steps if s.role == "gun" and not s.manual), key=lambda s: s.start_s
    )
    blocks: list[list[Step]] = []
    for step in steps:
        if blocks and abs(blocks[-1][-1].end_s - step.start_s) < SAME_INSTANT_S:
            blocks[-1].append(step)
        else:
            blocks.append([step])
    for block in blocks:
        length = block[-1].end_s - block[0].start_s
        cap = min(length + margin_s, limits.massage_extended_max_s)
        caps.update({id(step): cap for step in block})
    return caps
