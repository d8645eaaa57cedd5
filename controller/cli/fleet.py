"""``relieve fleet [--json]``, ``relieve fleet stop NODE|--all`` and ``relieve mqtt remove``.

Several nodes (rooms) share one broker, each under ``relieve/<node>/``. These commands talk to
the broker named in this computer's ``config.toml`` (``[mqtt]``), not to a daemon: the fleet
is what the nodes' retained ``status`` and ``state`` say; a stop is a ``cmd/stop`` to a node,
answered on its ``cmd/result``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
from typing import Any

from controller.mqtt.config import MqttConfig, load_config
from controller.mqtt.topics import BASE, NodeTopics, is_node_slug
from profiles.errors import RelieveError

__all__ = ["fleet_list", "fleet_stop", "mqtt_remove"]

EXIT_OK = 0
EXIT_FAILED = 1
GATHER_S = 1.5  # real seconds to collect the retained status and state of every node
ANSWER_S = 10.0  # real seconds a node has to answer a stop (--timeout)


def _config(args: argparse.Namespace) -> MqttConfig:
    settings = load_config(args.config_dir, getattr(args, "config", None))
    if settings.mqtt is None:
        raise RelieveError(
            f"{settings.path} has no [mqtt] table; the fleet is found on the broker it names "
            "(docs/mqtt.md)."
        )
    return settings.mqtt


async def _client(config: MqttConfig) -> Any:
    import aiomqtt

    from controller.mqtt.connect import client_options

    options = client_options(config, identifier=f"relieve-fleet-{secrets.token_hex(4)}")
    return aiomqtt.Client(**options)


async def _nodes(config: MqttConfig) -> dict[str, dict[str, Any]]:
    """Every node with a retained status or state on the broker."""
    import aiomqtt

    from controller.mqtt.connect import describe_mqtt_error

    found: dict[str, dict[str, Any]] = {}
    try:
        async with await _client(config) as client:
            await client.subscribe(f"{BASE}/+/status", qos=1)
            await client.subscribe(f"{BASE}/+/state", qos=1)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GATHER_S):
                    async for message in client.messages:
                        parts = str(message.topic).split("/")
                        if len(parts) != 3 or not is_node_slug(parts[1]):
                            continue
                        node = found.setdefault(parts[1], {"node": parts[1]})
                        raw = message.payload
                        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
                        if parts[2] == "status":
                            node["status"] = text or None
                        else:
                            with contextlib.suppress(ValueError):
                                state = json.loads(text) if text else None
                                node["state"] = state if isinstance(state, dict) else None
    except aiomqtt.MqttError as exc:
        raise RelieveError(describe_mqtt_error(exc, config)) from None
    return {name: found[name] for name in sorted(found)}


def fleet_list(args: argparse.Namespace) -> int:
    """``relieve fleet [--json]``"""
    config = _config(args)
    nodes = asyncio.run(_nodes(config))
    if args.json:
        print(json.dumps(list(nodes.values()), ensure_ascii=False, indent=2))
        return EXIT_OK
    if not nodes:
        print(f"No relieve node has published on {config.host}:{config.port}.")
        return EXIT_OK
    for node in nodes.values():
        print(_line(node))
    return EXIT_OK


def _line(node: dict[str, Any]) -> str:
    state = node.get("state") or {}
    status = node.get("status") or "unknown"
    what = str(state.get("state") or "unknown")
    text = f"{node['node']:<16} {status:<8} {what}"
    if state.get("profile"):
        text += f": {state['profile']}"
        if state.get("phase"):
            text += f", {state['phase']}"
    if state.get("last_outcome") and what == "idle":
        text += f" (last session {state['last_outcome']})"
    if state.get("alarm"):
        text += f"  ALARM {state['alarm']}"
    return text


def fleet_stop(args: argparse.Namespace) -> int:
    """``relieve fleet stop NODE...|--all``"""
    config = _config(args)
    wanted: list[str] = list(args.nodes or [])
    for name in wanted:
        if not is_node_slug(name):
            raise RelieveError(f"{name!r} is not a node name; relieve fleet lists them.")
    if not wanted and not args.all:
        raise RelieveError("Name the nodes to stop, or give --all.")
    wait_s = float(args.timeout)
    return asyncio.run(_stop(config, wanted, every=bool(args.all), wait_s=wait_s))


async def _stop(config: MqttConfig, wanted: list[str], *, every: bool, wait_s: float) -> int:
    import aiomqtt

    from controller.mqtt.connect import describe_mqtt_error

    if every:
        wanted = list(await _nodes(config))
        if not wanted:
            print("relieve: no node has published on the broker; nothing to stop.")
            return EXIT_OK
    answers: dict[str, dict[str, Any]] = {}
    try:
        async with await _client(config) as client:
            topics = {name: NodeTopics(name) for name in wanted}
            for topic in topics.values():
                await client.subscribe(topic.result, qos=1)
            for topic in topics.values():
                await client.publish(topic.command("stop"), b"{}", qos=1, retain=False)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    async for message in client.messages:
                        node = str(message.topic).split("/")[1]
                        raw = message.payload
                        with contextlib.suppress(ValueError, AttributeError):
                            result = json.loads(raw) if isinstance(raw, bytes) else None
                            if isinstance(result, dict) and result.get("command") == "stop":
                                answers[node] = result
                        if len(answers) == len(wanted):
                            break
    except aiomqtt.MqttError as exc:
        raise RelieveError(describe_mqtt_error(exc, config)) from None
    code = EXIT_OK
    for name in wanted:
        result = answers.get(name)
        if result is None:
            why = f"no answer within {wait_s:g} s; is it online?"
            print(f"relieve: {name}: {why}", file=sys.stderr)
            code = EXIT_FAILED
        elif result.get("accepted"):
            note = f" ({result['reason']})" if result.get("reason") else ""
            print(f"relieve: {name}: stop accepted{note}.")
        else:
            print(f"relieve: {name}: stop refused ({result.get('reason')}).", file=sys.stderr)
            code = EXIT_FAILED
    return code


def mqtt_remove(args: argparse.Namespace) -> int:
    """``relieve mqtt remove``: this node's device removed from Home Assistant."""
    config = _config(args)
    asyncio.run(_remove(config))
    print(
        f"relieve: node {config.node} removed from Home Assistant (its discovery, state and "
        "status cleared). A running relieve serve with this [mqtt] table publishes it again: "
        "stop it or remove the table first."
    )
    return EXIT_OK


async def _remove(config: MqttConfig) -> None:
    import aiomqtt

    from controller.mqtt.connect import describe_mqtt_error
    from controller.mqtt.discovery import discovery_topic

    topics = NodeTopics(config.node)
    try:
        async with await _client(config) as client:
            for topic in (
                discovery_topic(config.node, config.discovery_prefix),
                topics.state,
                topics.status,
            ):
                await client.publish(topic, b"", qos=1, retain=True)
    except aiomqtt.MqttError as exc:
        raise RelieveError(describe_mqtt_error(exc, config)) from None
