"""``relieve profiles list | show | validate`` and the readable timeline of a plan."""

from __future__ import annotations

import argparse
import json
import sys

from controller.library import ProfileLibrary, load_file
from profiles.compiler import PREHEAT_MAX_S, compile_plan
from profiles.errors import ProfileError, RelieveError
from profiles.limits import minutes_text
from profiles.plan import Capabilities, Plan, Step

__all__ = ["capabilities_from_args", "list_profiles", "render_timeline", "show_profile"]

# The common 7-level heating mat: level n is 35 + n °C (docs/protocols.md).
MAT_LEVELS = tuple(35.0 + n for n in range(1, 8))


def _library(args: argparse.Namespace) -> ProfileLibrary:
    return ProfileLibrary(args.config_dir)


def list_profiles(args: argparse.Namespace) -> int:
    out = sys.stdout
    library = _library(args)
    profiles = library.all()
    rows = []
    for name, loaded in sorted(profiles.items()):
        profile = loaded.profile
        try:
            seconds: float | None = compile_plan(profile, resolve=library.get).total_s
        except RelieveError:
            seconds = None
        rows.append((name, profile, loaded, seconds))
    if args.json:
        json.dump(
            [
                {
                    "name": name,
                    "title": profile.title,
                    "kind": profile.kind,
                    "area": profile.area,
                    "total_seconds": seconds,
                    "source": loaded.source,
                    "overrides_builtin": loaded.overrides_builtin,
                }
                for name, profile, loaded, seconds in rows
            ],
            out,
            indent=2,
        )
        out.write("\n")
    else:
        width = max((len(r[0]) for r in rows), default=4)
        for name, profile, loaded, seconds in rows:
            length = _clock(seconds) if seconds is not None else "?"
            source = "built-in" if loaded.builtin else loaded.source
            if loaded.overrides_builtin:
                source += " (replaces the built-in)"
            out.write(
                f"{name:<{width}}  {profile.kind:<8}  {length:>6}  {profile.title}  [{source}]\n"
            )
    for problem in library.problems:
        print(f"relieve: skipped {problem}", file=sys.stderr)
    return 0


def capabilities_from_args(args: argparse.Namespace) -> Capabilities:
    heat = args.heat_kind
    return Capabilities(
        heat=heat,
        cold=args.cold_kind,
        combined=args.pads == "combined" and heat == "setpoint" and args.cold_kind == "setpoint",
        heat_levels=MAT_LEVELS if heat == "levels" else (),
        probe=args.probe,
    )


def show_profile(args: argparse.Namespace) -> int:
    out = sys.stdout
    library = _library(args)
    profile = library.resolve(args.profile)
    plan = compile_plan(
        profile, capabilities_from_args(args), resolve=library.get, extended=args.extend
    )
    if args.json:
        json.dump(plan.to_json(), out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(render_timeline(plan))
    return 0


def validate_profiles(args: argparse.Namespace) -> int:
    out = sys.stdout
    library = _library(args)
    failed = 0
    for path in args.files:
        try:
            profile = load_file(path)
            plan = compile_plan(profile, resolve=library.get)
        except ProfileError as exc:
            failed += 1
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            continue
        except RelieveError as exc:
            failed += 1
            print(f"{path}: {exc}", file=sys.stderr)
            continue
        for warning in plan.warnings:
            print(f"{path}: warning: {warning}", file=sys.stderr)
        out.write(f"{path}: ok ({profile.name}, {profile.kind}, {_clock(plan.total_s)})\n")
    return 1 if failed else 0


def demo(args: argparse.Namespace) -> int:
    out = sys.stdout
    """Until the session engine lands: show the contrast plan a session would run."""
    args.profile = "contrast-lower-back"
    args.json = False
    args.pads, args.heat_kind, args.cold_kind = "combined", "setpoint", "setpoint"
    args.probe = args.extend = False
    out.write(
        "relieve demo: the plan of a contrast session on a contrast pad. Running it on "
        "simulated devices arrives with the session engine.\n\n"
    )
    return show_profile(args)


# --- the readable timeline ---------------------------------------------------------------------


def _clock(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    whole = round(abs(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{secs:02d}"
    return f"{sign}{minutes}:{secs:02d}"


_ROLE = {"heat": "heat pad", "cold": "cold pad", "gun": "gun", "user": "you"}


def _describe(step: Step, plan: Plan) -> str:
    combined = plan.capabilities.combined
    device = "pad" if combined and step.role in ("heat", "cold") else _ROLE[step.role]
    setting = ""
    if step.celsius is not None:
        setting = f" at {step.celsius:g} °C"
        if step.level is not None:
            setting = f" at level {step.level} (≈{step.celsius:g} °C asked)"
    if step.manual:
        device = {"heat": "heat pack", "cold": "ice pack", "gun": "your gun"}.get(step.role, device)
    match step.action:
        case "preheat":
            return (
                f"{device}: pre-heat{setting} (until within 1 °C, at most "
                f"{minutes_text(PREHEAT_MAX_S)})"
            )
        case "precool":
            return f"{device}: pre-cool{setting} for {minutes_text(step.duration_s)}"
        case "heat":
            return f"{device}: HEAT{setting} for {minutes_text(step.duration_s)}"
        case "cold":
            return f"{device}: COLD{setting} for {minutes_text(step.duration_s)}"
        case "run":
            return f"{device}: run at {step.rpm}/min on {step.area} for {step.duration_s:g} s"
        case "hold":
            return f"hold {step.duration_s:g} s: {step.text}"
        case "rest":
            return f"rest {step.duration_s:g} s"
        case _:
            return f"» {step.text}"


def render_timeline(plan: Plan) -> str:
    """The plan as a person reads it: one line per step, times from the start."""
    caps = plan.capabilities
    heading = f"{plan.title} ({plan.name}): {minutes_text(plan.total_s)}"
    if plan.extended:
        heading += " including the one-a-day extension"
    devices = "one contrast pad" if caps.combined else "separate heat and cold pads"
    if caps.heat == "levels":
        devices = "a level-only heat mat"
    lines = [heading, f"devices: {devices}" + (", skin probe" if caps.probe else "")]
    lines += [f"warning: {w}" for w in plan.warnings]
    lines.append("")
    for step in plan.steps:
        if step.role == "user" and step.action in ("hold", "rest"):
            continue  # the prompt at the same instant says it
        lines.append(f"{_clock(step.start_s):>8}  {_describe(step, plan)}")
    lines.append(f"{_clock(plan.total_s):>8}  end: every device off")
    return "\n".join(lines) + "\n"
