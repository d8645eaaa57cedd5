"""``relieve config check``: is ``config.toml`` valid, and does its MQTT broker take us?

First the file (each problem on its own line, exit 1); then, when it has an ``[mqtt]`` table, the
broker: connect as the daemon's bridge would (clean session, the username and password, TLS
verified), publish one test message (QoS 1, not retained) to ``relieve/<node>/check``, and
disconnect. One line says how it went; exit 0 only when all of it worked.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass

import aiomqtt

from controller.mqtt.config import ConfigError, MqttConfig, load_config
from controller.mqtt.connect import broker_address, client_options, describe_mqtt_error
from controller.mqtt.topics import NodeTopics

__all__ = ["CHECK_TIMEOUT_S", "check", "check_broker"]

CHECK_TIMEOUT_S = 10.0  # for the broker's answer to the connection, and to the test publish
CHECK_PAYLOAD = b'{"check": "relieve config check"}'

# paho's own log lines (a reset socket...) would repeat what the verdict says; -vv shows them.
_PAHO_LOGGER = logging.getLogger("controller.mqtt.check")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    sentence: str


def check(args: argparse.Namespace) -> int:
    try:
        node = load_config(args.config_dir, args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"relieve: {exc.path}: {problem}", file=sys.stderr)
        return 1
    if not node.exists:
        print(f"No settings file at {node.path}: the daemon runs without MQTT.")
        return 0
    if node.mqtt is None:
        print(f"{node.path} has no [mqtt] table: the daemon runs without MQTT.")
        return 0
    config = node.mqtt
    print(f"{node.path}: valid; node {config.node}, broker {broker_address(config)}.")
    _PAHO_LOGGER.setLevel(logging.CRITICAL if args.verbose < 2 else logging.NOTSET)
    verdict = asyncio.run(check_broker(config))
    if not verdict.ok:
        print(f"relieve: {verdict.sentence}", file=sys.stderr)
        return 1
    print(verdict.sentence)
    return 0


async def check_broker(config: MqttConfig) -> Verdict:
    """Connect, publish the test message, disconnect. Raises :class:`RelieveError` when the
    password file or the CA file cannot be used; a broker's failure is a Verdict."""
    topic = f"{NodeTopics(config.node).base}/check"
    options = client_options(config, identifier=f"relieve-{config.node}-check")
    where = broker_address(config)
    stage = "connect"
    try:
        async with aiomqtt.Client(
            **options, timeout=CHECK_TIMEOUT_S, logger=_PAHO_LOGGER
        ) as client:
            stage = "publish"
            await client.publish(topic, CHECK_PAYLOAD, qos=1, retain=False)
            stage = "disconnect"
    except aiomqtt.MqttError as exc:
        if stage == "connect":
            return Verdict(ok=False, sentence=describe_mqtt_error(exc, config))
        if stage == "publish":
            if str(exc) == "Operation timed out":
                sentence = (
                    f"the broker at {where} took the connection but did not acknowledge the "
                    f"test publish to {topic} within {CHECK_TIMEOUT_S:g} s."
                )
            else:
                sentence = (
                    f"connected to {where}, but the test publish to {topic} failed: "
                    f"{describe_mqtt_error(exc, config)}"
                )
            return Verdict(ok=False, sentence=sentence)
        # the publish was acknowledged; only the goodbye went wrong
    who = (
        f"connected, authenticated as {config.username}"
        if config.username is not None
        else "connected anonymously"
    )
    tls = " (TLS verified)" if config.tls else ""
    return Verdict(ok=True, sentence=f"broker {where}: {who}, test publish delivered{tls}.")
