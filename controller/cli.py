"""The ``relieve`` command line.

Only argparse is imported at start-up; every command imports what it needs when it runs, so
``relieve --help`` answers at once (bumble alone costs ~0.4 s to import).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _profiles_list(args: argparse.Namespace) -> int:
    from controller import profiles_cmd

    return profiles_cmd.list_profiles(args)


def _profiles_show(args: argparse.Namespace) -> int:
    from controller import profiles_cmd

    return profiles_cmd.show_profile(args)


def _profiles_validate(args: argparse.Namespace) -> int:
    from controller import profiles_cmd

    return profiles_cmd.validate_profiles(args)


def _demo(args: argparse.Namespace) -> int:
    from controller import profiles_cmd

    return profiles_cmd.demo(args)


def _history(args: argparse.Namespace) -> int:
    from controller import history_cmd

    return history_cmd.history(args)


def _injury_add(args: argparse.Namespace) -> int:
    from controller import history_cmd

    return history_cmd.injury_add(args)


def _add_history_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    history = commands.add_parser(
        "history", help="past sessions and today's minutes of heat, cold and massage per area"
    )
    history.add_argument("--today", action="store_true", help="only today's sessions")
    output = history.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a JSON list of sessions")
    output.add_argument("--csv", action="store_true", help="print CSV: a header, one row a session")
    history.add_argument(
        "--simulated", action="store_true", help="the history of simulated devices"
    )
    history.set_defaults(handler=_history)

    injury = commands.add_parser(
        "injury", help="record an injury: no heat or contrast on that area for 48 hours (H6)"
    )
    sub = injury.add_subparsers(dest="injury_command", metavar="ACTION")
    add = sub.add_parser("add", help="record an injury on a body area")
    add.add_argument("--area", required=True, help="the body area, e.g. lower-back")
    add.add_argument(
        "--at",
        metavar="TIME",
        help="when it happened: HH:MM today, or an ISO-8601 date and time (default: now)",
    )
    add.add_argument(
        "--simulated", action="store_true", help="record it in the simulated devices' history"
    )
    add.set_defaults(handler=_injury_add)
    injury.set_defaults(handler=None, subparser=injury)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relieve",
        description=(
            "Timed therapy sessions on Bluetooth LE heat pads, cold pads, contrast pads and "
            "massage guns. Not a medical device: follow your clinician's advice."
        ),
    )
    parser.add_argument(
        "--config-dir",
        type=Path,
        metavar="DIR",
        help="configuration directory (user profiles in DIR/profiles); "
        "default: your user config directory, or $RELIEVE_CONFIG_DIR",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the session history is kept; "
        "default: your user data directory, or $RELIEVE_DATA_DIR",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="show what a session does, on simulated devices (no hardware needed)"
    )
    demo.set_defaults(handler=_demo)

    profiles = commands.add_parser("profiles", help="list, show and check session profiles")
    sub = profiles.add_subparsers(dest="profiles_command", metavar="ACTION")
    listing = sub.add_parser("list", help="the built-in profiles and your own")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_profiles_list)

    show = sub.add_parser("show", help="a profile's timeline, compiled into a plan")
    show.add_argument("profile", metavar="NAME|FILE", help="a profile name or a .toml file")
    show.add_argument("--json", action="store_true", help="print the plan as JSON")
    show.add_argument(
        "--pads",
        choices=("combined", "separate"),
        default="combined",
        help="one contrast pad that heats and cools (default), or separate heat and cold pads",
    )
    show.add_argument(
        "--heat",
        choices=("setpoint", "levels", "manual"),
        default="setpoint",
        dest="heat_kind",
        help="heat device: a temperature setpoint (default), a level-only mat (36-42 °C in 7 "
        "levels), or a passive pack (manual)",
    )
    show.add_argument(
        "--cold",
        choices=("setpoint", "manual"),
        default="setpoint",
        dest="cold_kind",
        help="cold device: a cold pad with a setpoint (default) or a passive ice pack (manual)",
    )
    show.add_argument("--probe", action="store_true", help="a skin-temperature probe is bound")
    show.add_argument(
        "--extend",
        action="store_true",
        help="include the one-a-day massage extension (M1: 3 more minutes, at most 18)",
    )
    show.set_defaults(handler=_profiles_show)

    validate = sub.add_parser(
        "validate", help="check profile files; exit 0 when all are valid, 1 otherwise"
    )
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.set_defaults(handler=_profiles_validate)
    profiles.set_defaults(handler=None, subparser=profiles)
    _add_history_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        sub = getattr(args, "subparser", parser)
        sub.print_help(sys.stderr)
        return EXIT_USAGE
    from profiles.errors import RelieveError

    try:
        return handler(args)
    except RelieveError as exc:
        print(f"relieve: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("relieve: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`relieve history --json | head`): not an error of ours
        with contextlib.suppress(OSError):
            # point stdout at /dev/null so the interpreter's flush at exit does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
