"""Several rooms on one broker: ``relieve fleet``, ``relieve fleet stop`` and ``relieve mqtt
remove``, run as the commands a person types, against two nodes (daemons on simulated devices,
each with its bridge) on a real mosquitto.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from controller.mqtt.bridge import MqttBridge
from controller.mqtt.config import MqttConfig
from controller.mqtt.discovery import discovery_topic
from tests.daemon_rig import Node, node
from tests.mqtt_broker import Broker, Collector

pytest_plugins = ["tests.mqtt_broker"]

RELIEVE = str(Path(sys.executable).parent / "relieve")
WITHIN_S = 15.0


@contextlib.asynccontextmanager
async def room(tmp_path: Path, broker: Broker, name: str) -> AsyncIterator[tuple[Node, MqttBridge]]:
    """A node called ``name`` with its bridge connected to ``broker``."""
    directory = tmp_path / name
    directory.mkdir()
    async with node(directory) as n:
        config = MqttConfig(host=broker.host, port=broker.port, node=name)
        bridge = MqttBridge(n.daemon, config, version="test")
        task = asyncio.ensure_future(bridge.run())
        try:
            await asyncio.wait_for(bridge.connected.wait(), WITHIN_S)
            yield n, bridge
        finally:
            await bridge.close()
            task.cancel()
            await asyncio.wait({task}, timeout=5)


async def relieve(tmp_path: Path, broker: Broker, *args: str) -> tuple[int, str, str]:
    """The relieve command of a third computer, whose config.toml names the broker."""
    config = tmp_path / "laptop"
    config.mkdir(exist_ok=True)
    (config / "config.toml").write_text(
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nnode = "laptop"\n'
    )
    env = {**os.environ, "RELIEVE_CONFIG_DIR": str(config)}
    proc = await asyncio.create_subprocess_exec(
        RELIEVE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_fleet_lists_every_node_with_its_session(tmp_path: Path, broker: Broker) -> None:
    async with (
        room(tmp_path, broker, "bedroom") as (bedroom, _),
        room(tmp_path, broker, "living-room") as (_, _),
    ):
        client = await bedroom.connect()
        started = await bedroom.start(client)
        assert started["ok"] is True, started
        async with Collector(broker, "relieve/bedroom/state") as seen:
            await bedroom.until(lambda: bedroom.daemon.status()["session"]["state"] == "running")
            await seen.wait_for(lambda m: b'"state": "running"' in m.payload, within=WITHIN_S)
        code, out, err = await relieve(tmp_path, broker, "fleet", "--json")
        assert code == 0, err
        nodes = {entry["node"]: entry for entry in json.loads(out)}
        assert set(nodes) == {"bedroom", "living-room"}
        assert nodes["bedroom"]["status"] == "online"
        assert nodes["bedroom"]["state"]["state"] == "running"
        assert nodes["bedroom"]["state"]["profile"] == "contrast-mini"
        assert nodes["living-room"]["state"]["state"] == "idle"
        code, out, err = await relieve(tmp_path, broker, "fleet")
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].split()[:3] == ["bedroom", "online", "running:"]
        assert "contrast-mini" in lines[0]
        assert lines[1].split()[:3] == ["living-room", "online", "idle"]
        await client.close()


async def test_fleet_stop_stops_a_session_in_another_room(tmp_path: Path, broker: Broker) -> None:
    async with (
        room(tmp_path, broker, "bedroom") as (bedroom, _),
        room(tmp_path, broker, "living-room") as (living, _),
    ):
        client = await bedroom.connect()
        assert (await bedroom.start(client))["ok"] is True
        await bedroom.until(lambda: bedroom.daemon.status()["session"]["state"] == "running")
        stopping = asyncio.ensure_future(relieve(tmp_path, broker, "fleet", "stop", "bedroom"))
        await bedroom.until(lambda: bedroom.daemon.current is None or stopping.done())
        code, out, err = await stopping
        assert code == 0, err
        assert out.strip() == "relieve: bedroom: stop accepted."
        await bedroom.session_ended()
        assert bedroom.every_device_off()
        assert [r.outcome for r in bedroom.ledger.sessions()] == ["stopped"]
        assert [(c.source, c.command, c.accepted) for c in bedroom.ledger.commands()] == [
            ("mqtt", "stop", True)
        ]
        assert living.ledger.commands() == []  # the other room was not asked
        await client.close()

        # --all: every node answers; with no session each says so
        code, out, err = await relieve(tmp_path, broker, "fleet", "stop", "--all")
        assert code == 0, err
        assert sorted(out.splitlines()) == [
            "relieve: bedroom: stop accepted (no session runs).",
            "relieve: living-room: stop accepted (no session runs).",
        ]


async def test_fleet_stop_of_a_node_that_does_not_answer_fails_in_one_sentence(
    tmp_path: Path, broker: Broker
) -> None:
    code, out, err = await relieve(tmp_path, broker, "fleet", "stop", "attic", "--timeout", "0.5")
    assert (code, out) == (1, "")
    assert err.strip() == "relieve: attic: no answer within 0.5 s; is it online?"
    code, _, err = await relieve(tmp_path, broker, "fleet", "stop")
    assert code == 1
    assert err.strip() == "relieve: Name the nodes to stop, or give --all."
    code, _, err = await relieve(tmp_path, broker, "fleet", "stop", "Not A Node")
    assert code == 1
    assert "is not a node name" in err
    assert "Traceback" not in err


async def test_mqtt_remove_clears_the_nodes_device_state_and_status(
    tmp_path: Path, broker: Broker
) -> None:
    async with room(tmp_path, broker, "laptop") as (_, bridge):
        await bridge.close()  # the node's bridge is stopped first, as the docs say
    topics = [discovery_topic("laptop"), "relieve/laptop/state", "relieve/laptop/status"]
    async with Collector(broker, "#") as seen:
        await seen.wait_for(lambda m: m.topic == topics[0] and m.retain, within=WITHIN_S)
    code, out, err = await relieve(tmp_path, broker, "mqtt", "remove")
    assert code == 0, err
    assert "node laptop removed from Home Assistant" in out
    async with Collector(broker, "#") as seen, broker.client() as client:
        await client.publish("test/marker", b"x", qos=1)
        await seen.wait_for("test/marker", within=WITHIN_S)
        still = {m.topic for m in seen.messages if m.retain}
    assert not still & set(topics)
    code, out, err = await relieve(tmp_path, broker, "fleet", "--json")
    assert code == 0, err
    assert json.loads(out) == []
