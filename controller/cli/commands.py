"""The ``relieve`` command line.

Only argparse (and, for ``--driver``, the driver names of the pure :mod:`drivers.registry`) is
imported at start-up; every command imports what it needs when it runs, so ``relieve --help``
answers at once (bumble alone costs ~0.4 s to import).

The global options (``--config-dir``, ``--data-dir``, ``-v``) go before or after the command:
``relieve run X --data-dir D`` is ``relieve --data-dir D run X``; given in both places, the one
after the command wins.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from profiles.errors import printable

__all__ = ["build_parser", "main", "quoted_argument", "version"]

Handler = Callable[[argparse.Namespace], int]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

SCAN_TIMEOUT_MAX_S = 120.0  # `scan --timeout`: two minutes hears every device that advertises


# --- numbers on the command line: argparse refuses them with one sentence (exit 2) before ----
# --- anything is asked, printed or connected ------------------------------------------------


# Characters of a refused argument repeated back in its refusal (a longer one is cut, "...").
ARGUMENT_SHOWN_MAX = 40


def quoted_argument(text: str) -> str:
    """An argument as a refusal repeats it: quoted, every unprintable character escaped (a
    newline as ``\\n``, so the refusal stays one line), cut to :data:`ARGUMENT_SHOWN_MAX`."""
    return f"'{printable(text, ARGUMENT_SHOWN_MAX)}'"


def _finite(text: str, what: str, example: str) -> float:
    """``text`` as a finite float; NaN, infinity and non-numbers are refused naming ``what``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"{quoted_argument(text)} is not {what}; give an ordinary number such as {example}"
        )
    return value


def _speed(text: str) -> float:
    """``run --speed`` / ``demo --speed``: a finite number. Its range (1-1000) and the rule that
    only simulated devices run faster are checked as the session starts, before anything else."""
    return _finite(text, "a speed", "60")


def _scan_timeout(text: str) -> float:
    """``scan --timeout``: seconds above 0, at most :data:`SCAN_TIMEOUT_MAX_S`."""
    seconds = _finite(text, "a number of seconds", "5")
    if not 0 < seconds <= SCAN_TIMEOUT_MAX_S:
        raise argparse.ArgumentTypeError(
            f"{quoted_argument(text)} is not a time to listen for; give seconds above 0 and "
            f"at most {SCAN_TIMEOUT_MAX_S:g}"
        )
    return seconds


def _celsius(text: str) -> float:
    """``device heat|cold --celsius``: a finite temperature (the limits are checked next)."""
    return _finite(text, "a temperature", "40")


def _profiles_list(args: argparse.Namespace) -> int:
    from controller.cli import profiles as profiles_cmd

    return profiles_cmd.list_profiles(args)


def _profiles_show(args: argparse.Namespace) -> int:
    from controller.cli import profiles as profiles_cmd

    return profiles_cmd.show_profile(args)


def _profiles_validate(args: argparse.Namespace) -> int:
    from controller.cli import profiles as profiles_cmd

    return profiles_cmd.validate_profiles(args)


def _demo(args: argparse.Namespace) -> int:
    if getattr(args, "tui", False):
        from tui import cli as tui_cmd

        return tui_cmd.demo(args)
    from controller.cli import run as run_cmd

    return run_cmd.demo(args)


def _tui(args: argparse.Namespace) -> int:
    from tui import cli as tui_cmd

    return tui_cmd.tui(args)


def _add_tui_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tui = commands.add_parser(
        "tui", help="the terminal UI: a session on one screen, with keys (docs/tui.md)"
    )
    tui.add_argument(
        "profile",
        metavar="PROFILE",
        nargs="?",
        help="a profile name or a .toml file; without it, a list of profiles to choose from",
    )
    for role in ("heat", "cold", "gun", "probe"):
        tui.add_argument(
            f"--{role}", metavar="ADDR", help=f"the {role} device's address, or 'manual'"
        )
    _add_simulation_options(tui)
    tui.add_argument(
        "--speed",
        type=_speed,
        metavar="N",
        help="run time N times faster, 1-1000 (simulated devices only)",
    )
    tui.add_argument(
        "--yes",
        action="store_true",
        help="confirm the precautions (fabric layer, awake, thin towel) without asking",
    )
    _add_allowance_options(tui)
    tui.set_defaults(handler=_tui)


def _run(args: argparse.Namespace) -> int:
    from controller.cli import run as run_cmd

    return run_cmd.run(args)


def _add_run_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="run a session: a profile on your devices")
    run.add_argument("profile", metavar="PROFILE", help="a profile name or a .toml file")
    for role, what in (
        ("heat", "the heat pad"),
        ("cold", "the cold pad"),
        ("gun", "the massage gun"),
    ):
        run.add_argument(
            f"--{role}",
            metavar="ADDR",
            help=f"{what}'s address, or 'manual' (a passive pack / your own gun: timer and "
            "prompts only); default: picked from a scan by kind",
        )
    run.add_argument("--probe", metavar="ADDR", help="a skin-temperature probe's address")
    _add_simulation_options(run)
    run.add_argument(
        "--speed",
        type=_speed,
        metavar="N",
        help="run time N times faster, 1-1000 (simulated devices only)",
    )
    run.add_argument("--json", action="store_true", help="one JSON event per line")
    run.add_argument(
        "--yes",
        action="store_true",
        help="confirm the precautions (fabric layer, awake, thin towel) for an unattended run",
    )
    _add_allowance_options(run)
    run.set_defaults(handler=_run)


def _lazy(module: str, name: str) -> Handler:
    """The handler ``name`` of ``controller.cli.<module>``, imported when the command runs."""

    def handler(args: argparse.Namespace) -> int:
        import importlib

        command: Handler = getattr(importlib.import_module(f"controller.cli.{module}"), name)
        return command(args)

    return handler


def _node(name: str) -> Handler:
    return _lazy("node", name)


def _add_node_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="the node daemon: owns this data directory's radio and sessions; the other "
        "commands go through it (docs/daemon.md)",
    )
    _add_simulation_options(serve)
    serve.add_argument(
        "--speed",
        type=_speed,
        metavar="N",
        help="run every session's time N times faster, 1-1000 (simulated devices only)",
    )
    serve.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the settings file (its [mqtt] table); default: config.toml in the config directory",
    )
    serve.set_defaults(handler=_node("serve"))
    status = commands.add_parser(
        "status", help="the node: its daemon, and the session running now (whoever runs it)"
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_node("status"))
    stop = commands.add_parser(
        "stop",
        help="stop the node's session (every device OFF), in the daemon or another relieve",
    )
    stop.add_argument(
        "--emergency", action="store_true", help="an emergency stop (the daemon's session)"
    )
    stop.set_defaults(handler=_node("stop"))
    attach = commands.add_parser(
        "attach", help="follow the session the node daemon runs, with the live view"
    )
    attach.add_argument("--json", action="store_true", help="one JSON event per line")
    attach.set_defaults(handler=_node("attach"))
    arm = commands.add_parser(
        "arm",
        help="confirm here the precautions a remote (MQTT) start needs: one start within "
        "10 minutes (docs/mqtt.md)",
    )
    arm.add_argument(
        "--yes", action="store_true", help="confirm the precautions without asking each one"
    )
    arm.set_defaults(handler=_node("arm"))


def _fleet_timeout(text: str) -> float:
    seconds = _finite(text, "a number of seconds", "10")
    if not 0 < seconds <= 120:
        raise argparse.ArgumentTypeError(
            f"{quoted_argument(text)} is not a time to wait for each node; give seconds above 0 "
            "and at most 120"
        )
    return seconds


def _fleet(name: str) -> Handler:
    return _lazy("fleet", name)


def _add_mqtt_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def config_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--config",
            type=Path,
            metavar="FILE",
            help="the settings file; default: config.toml in the config directory",
        )

    fleet = commands.add_parser(
        "fleet", help="every node (room) on the MQTT broker, with its session (docs/mqtt.md)"
    )
    fleet.add_argument("--json", action="store_true", help="print JSON")
    config_option(fleet)
    fleet.set_defaults(handler=_fleet("fleet_list"))
    sub = fleet.add_subparsers(dest="fleet_command", metavar="ACTION")
    stop = sub.add_parser("stop", help="stop the sessions of NODE... (or --all) over MQTT")
    stop.add_argument("nodes", nargs="*", metavar="NODE")
    stop.add_argument("--all", action="store_true", help="every node on the broker")
    stop.add_argument(
        "--timeout",
        type=_fleet_timeout,
        default=10.0,
        metavar="S",
        help="seconds each node has to answer (default 10)",
    )
    config_option(stop)
    stop.set_defaults(handler=_fleet("fleet_stop"))
    mqtt = commands.add_parser("mqtt", help="this node on the MQTT broker")
    mqtt_sub = mqtt.add_subparsers(dest="mqtt_command", metavar="ACTION")
    remove = mqtt_sub.add_parser(
        "remove", help="remove this node's device from Home Assistant (clears its retained topics)"
    )
    config_option(remove)
    remove.set_defaults(handler=_fleet("mqtt_remove"))
    mqtt.set_defaults(handler=None, subparser=mqtt)


def _add_allowance_options(parser: argparse.ArgumentParser) -> None:
    """``--extend`` and ``--override-allowance``, as ``relieve run`` and ``relieve tui`` take
    them."""
    parser.add_argument(
        "--extend",
        action="store_true",
        help="the one-a-day massage extension: 3 more minutes, 18 at most (M1), confirmed",
    )
    parser.add_argument(
        "--override-allowance",
        nargs="*",
        metavar="RULE",
        help="lift the daily allowance rules (H5 H6 C2 M1 M4; all when none is named); never a "
        "temperature or duration limit; recorded in the ledger",
    )


def _history(args: argparse.Namespace) -> int:
    from controller.cli import history as history_cmd

    return history_cmd.history(args)


def _injury_add(args: argparse.Namespace) -> int:
    from controller.cli import history as history_cmd

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
    history.add_argument(
        "--commands",
        action="store_true",
        help="the remote (MQTT) commands the node was given, with their source and result",
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


def _scan(args: argparse.Namespace) -> int:
    from controller.cli import device as device_cmd

    return device_cmd.scan(args)


def _device(args: argparse.Namespace) -> int:
    from controller.cli import device as device_cmd

    return device_cmd.device(args)


def _duration(text: str) -> float:
    from controller.cli import device as device_cmd

    return device_cmd.parse_duration(text)


def _add_simulation_options(parser: argparse.ArgumentParser) -> None:
    """``--simulate`` / ``--simulator SPEC``: every command that talks to devices takes them."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--simulate",
        action="store_true",
        help="use simulated devices in this process (no hardware needed)",
    )
    where.add_argument(
        "--simulator",
        metavar="SPEC",
        help="use the simulator server at SPEC (unix:/path or tcp-client:host:port; "
        "see relieve sim serve)",
    )


def _driver_names() -> tuple[str, ...]:
    """What ``--driver`` takes (the registry is pure: no driver class, no bleak)."""
    from drivers.registry import driver_names

    return driver_names()


def _add_device_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = commands.add_parser("scan", help="list the devices in range that relieve can drive")
    scan.add_argument(
        "--timeout",
        type=_scan_timeout,
        default=5.0,
        metavar="S",
        help=f"listen S seconds, at most {SCAN_TIMEOUT_MAX_S:g} (default 5)",
    )
    scan.add_argument("--json", action="store_true", help="print a JSON list")
    scan.add_argument("--all", action="store_true", help="also list devices relieve cannot drive")
    _add_simulation_options(scan)
    scan.set_defaults(handler=_scan)

    device = commands.add_parser(
        "device", help="manual control of one device: info, heat, cold, gun, off, watch"
    )
    sub = device.add_subparsers(dest="device_command", metavar="ACTION")
    drivers = _driver_names()

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument("address", metavar="ADDR", help="the device's address (relieve scan)")
        parser.add_argument(
            "--driver",
            metavar="NAME",
            choices=drivers,
            help=f"drive it with NAME ({', '.join(drivers)}) when its advertisement does not say",
        )
        parser.add_argument(
            "--init-packet",
            metavar="HEX",
            help="heating mat: the init packet captured from its vendor app (default a55affff)",
        )
        _add_simulation_options(parser)
        parser.set_defaults(handler=_device)
        return parser

    info = action("info", "model, firmware, battery, capabilities and safety class")
    info.add_argument("--json", action="store_true", help="print JSON")
    for name, verb in (("heat", "heat"), ("cold", "cool")):
        pad = action(name, f"{verb} a pad for a while, then switch it off")
        pad.add_argument(
            "--celsius", type=_celsius, required=True, metavar="C", help="setpoint, °C"
        )
        pad.add_argument(
            "--for",
            dest="duration",
            type=_duration,
            required=True,
            metavar="DURATION",
            help="how long, e.g. 90s, 5m, 1m30s",
        )
    gun = action("gun", "run a massage gun for a while, then stop it")
    speed = gun.add_mutually_exclusive_group(required=True)
    speed.add_argument(
        "--rpm", type=int, metavar="N", help="percussions per minute, 1000-3616 (the gun's range)"
    )
    speed.add_argument(
        "--level", choices=("low", "medium", "high"), help="1750, 2100 or 2400 per minute"
    )
    gun.add_argument(
        "--for",
        dest="duration",
        type=_duration,
        required=True,
        metavar="DURATION",
        help="how long, at most 15m (M1), e.g. 5m",
    )
    action("off", "switch a device's output off")
    watch = action("watch", "print what a device reports until Ctrl-C")
    watch.add_argument(
        "--for", dest="duration", type=_duration, metavar="DURATION", help="stop after DURATION"
    )
    device.set_defaults(handler=None, subparser=device)


def _sim_serve(args: argparse.Namespace) -> int:
    from simulators import serve_cmd

    return serve_cmd.serve(args)


def _sim_list(args: argparse.Namespace) -> int:
    from simulators import serve_cmd

    return serve_cmd.list_devices(args)


def _sim_speed(text: str) -> float:
    from simulators import serve_cmd

    return serve_cmd.parse_speed(text)


def _sim_tcp(text: str) -> tuple[str, int]:
    from simulators import serve_cmd

    return serve_cmd.parse_tcp_address(text)


def _add_sim_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = commands.add_parser("sim", help="the simulated devices: list them, serve them")
    sub = sim.add_subparsers(dest="sim_command", metavar="ACTION")
    serve = sub.add_parser(
        "serve",
        help="serve every simulated device over a socket; each process that connects gets "
        "its own virtual Bluetooth adapter (docs/sim-server.md)",
    )
    where = serve.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", metavar="PATH", help="listen on a unix socket at PATH")
    where.add_argument(
        "--tcp", type=_sim_tcp, metavar="HOST:PORT", help="listen on TCP, e.g. 127.0.0.1:9100"
    )
    serve.add_argument("--scenario", metavar="FILE", help="a fault scenario (TOML) to apply")
    serve.add_argument(
        "--speed",
        type=_sim_speed,
        metavar="N",
        help="run device time N times faster than real time (default: real time)",
    )
    serve.add_argument(
        "--events-json",
        action="store_true",
        help="print one JSON line per device state change on stdout",
    )
    serve.set_defaults(handler=_sim_serve)
    listing = sub.add_parser("list", help="the simulated device types and their faults")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(handler=_sim_list)
    sim.set_defaults(handler=None, subparser=sim)


def _health(args: argparse.Namespace) -> int:
    from controller.cli import health as health_cmd

    return health_cmd.interactive(args)


def _health_set(args: argparse.Namespace) -> int:
    from controller.cli import health as health_cmd

    return health_cmd.set_answer(args)


def _health_show(args: argparse.Namespace) -> int:
    from controller.cli import health as health_cmd

    return health_cmd.show(args)


def _add_health_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    health = commands.add_parser(
        "health",
        help="the health questions (conditions that rule out heat, cold or the massage gun): "
        "asked once, then show or change the answers",
        description="Without ACTION: ask every health question in a terminal and save the "
        "answers (docs/health.md). relieve is not a medical device; these questions do not "
        "replace a clinician's advice.",
    )
    sub = health.add_subparsers(dest="health_command", metavar="ACTION")
    setter = sub.add_parser("set", help="answer one question: relieve health set dvt no")
    setter.add_argument("condition", metavar="CONDITION", help="the condition (health show)")
    setter.add_argument("answer", metavar="yes|no", help="your answer")
    setter.set_defaults(handler=_health_set)
    show = sub.add_parser("show", help="your answers, what they block, and if all are answered")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_health_show)
    health.set_defaults(handler=_health)


def _config_check(args: argparse.Namespace) -> int:
    from controller.cli import config_check

    return config_check.check(args)


def _add_config_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = commands.add_parser(
        "config",
        help="the node's settings file (config.toml, with its [mqtt] table): check it",
    )
    sub = config.add_subparsers(dest="config_command", metavar="ACTION")
    check = sub.add_parser(
        "check",
        help="validate config.toml, then connect to its MQTT broker and publish a test message "
        "(docs/mqtt.md); exit 0 when all of it works",
    )
    check.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="check FILE instead of config.toml in the configuration directory",
    )
    check.set_defaults(handler=_config_check)
    config.set_defaults(handler=None, subparser=config)


# --- options every command takes, before or after it; --version -------------------------------


def _add_global_options(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    """``--config-dir``, ``--data-dir`` and ``-v``, on the top-level parser and on every command's.

    On a command's parser they have no default (SUPPRESS): given after the command, they replace
    what was given before it; left out, they leave it (or the top-level default) alone.
    """
    where = parser.add_argument_group("global options") if after_command else parser
    unset = argparse.SUPPRESS if after_command else None
    where.add_argument(
        "--config-dir",
        type=Path,
        default=unset,
        metavar="DIR",
        help="configuration directory (user profiles in DIR/profiles); "
        "default: your user config directory, or $RELIEVE_CONFIG_DIR",
    )
    where.add_argument(
        "--data-dir",
        type=Path,
        default=unset,
        metavar="DIR",
        help="where the session history is kept; "
        "default: your user data directory, or $RELIEVE_DATA_DIR",
    )
    where.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if after_command else 0,
        help="more log output",
    )


class _CommandParser(argparse.ArgumentParser):
    """The parser of a command and of its actions: it takes the global options too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # --config is not --config-dir
        super().__init__(*args, **kwargs)
        _add_global_options(self, after_command=True)


def version() -> str:
    """The installed distribution's version, else the one pyproject.toml declares."""
    from importlib import metadata

    try:
        return metadata.version("relieve")
    except metadata.PackageNotFoundError:
        pass
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        with pyproject.open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, tomllib.TOMLDecodeError, KeyError):
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``: print ``relieve <version>`` and exit 0; the version is looked up only then."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(
            option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(f"relieve {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relieve",
        allow_abbrev=False,  # an abbreviation would make --config mean --config-dir
        description=(
            "Timed therapy sessions on Bluetooth LE heat pads, cold pads, contrast pads and "
            "massage guns. Not a medical device: follow your clinician's advice."
        ),
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    _add_global_options(parser, after_command=False)
    # every command's parser (and its actions', made by it) is a _CommandParser
    commands: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_CommandParser
    )

    demo = commands.add_parser(
        "demo",
        help="the lower-back routine on simulated devices at x60 (no hardware needed)",
    )
    demo.add_argument("--json", action="store_true", help="one JSON event per line")
    demo.add_argument(
        "--speed", type=_speed, metavar="N", help="time N times faster, 1-1000 (default 60)"
    )
    demo.add_argument("--tui", action="store_true", help="show it in the terminal UI")
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
    _add_device_commands(commands)
    _add_run_commands(commands)
    _add_tui_command(commands)
    _add_node_commands(commands)
    _add_mqtt_commands(commands)
    _add_health_commands(commands)
    _add_config_commands(commands)
    _add_sim_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Quiet by default: what a person needs (alarms, refusals) comes as events and messages;
    # -v shows warnings, -vv information, -vvv every GATT write.
    logging.basicConfig(
        level=(logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 3)],
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
