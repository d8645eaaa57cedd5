"""``config.toml``'s ``[mqtt]`` table, and ``relieve config check`` against a real mosquitto.

The brokers come from :mod:`tests.mqtt_broker` (each test its own, on a free port): anonymous,
with a password, with TLS (a CA of its own, and an unrelated one a client must refuse it with).
The command runs in this process through :func:`controller.cli.commands.main` (one run goes
through the installed ``relieve`` script, for the exit code and the absence of a traceback).
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from controller.cli import config_check
from controller.cli.commands import main
from controller.mqtt.config import ConfigError, MqttConfig, load_config, read_password
from controller.mqtt.connect import client_options, describe_mqtt_error, tls_context
from profiles.errors import RelieveError
from tests.mqtt_broker import Broker, BrokerFactory, Collector

pytest_plugins = ["tests.mqtt_broker"]

RELIEVE = str(Path(sys.executable).parent / "relieve")
USER, PASSWORD = "relieve", "correct horse battery"

# paho leaves the socket of a failed TLS handshake to the garbage collector: quiet under -W error
TLS_HANDSHAKE_FAILS = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(None, path)
    return caught.value.problems


def _secret(tmp_path: Path, text: str, *, mode: int = 0o600, name: str = "password") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def _is_sentence(text: str) -> bool:
    return text[:1].strip() != "" and text.endswith((".", "?", ")")) and "\n" not in text


# --- the [mqtt] table: one sentence per problem ----------------------------------------------


def test_unknown_key_and_table_are_named_with_the_known_keys(tmp_path: Path) -> None:
    problems = _problems(tmp_path, '[mqtt]\nhots = "broker"\n\n[extra]\nx = 1\n')
    assert problems[0] == "Unknown table or key 'extra'; the file has [mqtt] only."
    assert problems[1].startswith("mqtt.hots: unknown key; the keys are host, port, username")
    assert all(_is_sentence(p) for p in problems), problems


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("port = 0", "mqtt.port: input should be greater than or equal to 1."),
        ("port = 65536", "mqtt.port: input should be less than or equal to 65535."),
        ('port = "1883"', "mqtt.port: input should be a valid integer."),
        ('node = "Bed Room"', "mqtt.node: use lower-case letters, digits, '-' and '_'"),
        ('node = "bedroom/2"', "mqtt.node: use lower-case letters"),
        ("remote_start = true", "mqtt.remote_start is true but start_profiles is empty"),
        ('start_profiles = ["lower-back"]', "mqtt.start_profiles is set but remote_start is"),
        ('password_file = "/etc/relieve/mqtt"', "mqtt.password_file is set but mqtt.username"),
        ('ca_file = "/etc/ssl/ca.pem"', "mqtt.ca_file is set but mqtt.tls is false"),
        ("tls = 1", "mqtt.tls: input should be a valid boolean."),
    ],
)
def test_each_problem_is_one_sentence(tmp_path: Path, table: str, expected: str) -> None:
    problems = _problems(tmp_path, f"[mqtt]\n{table}\n")
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems
    assert _is_sentence(problems[0]), problems


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    problems = _problems(tmp_path, '[mqtt]\nport = 0\nnode = "A B"\nwho = 1\n')
    assert [p.split(":")[0] for p in problems] == ["mqtt.port", "mqtt.node", "mqtt.who"]


def test_a_password_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    shared = _secret(tmp_path, "hunter2\n", mode=0o644)
    config = MqttConfig(username=USER, password_file=str(shared))
    with pytest.raises(RelieveError, match=r"can be read by others; make it private \(chmod 600"):
        read_password(config)
    shared.chmod(0o600)
    assert read_password(config) == "hunter2"  # its first line, without the newline


# --- connection options and error sentences (no broker) ---------------------------------------


def test_client_options_are_a_clean_verified_session(tmp_path: Path) -> None:
    config = MqttConfig(
        host="mqtt.example",
        port=8883,
        username=USER,
        password_file=str(_secret(tmp_path, "from the file\nignored\n")),
        tls=True,
    )
    will = aiomqtt.Will("relieve/x/status", b"offline", qos=1, retain=True)
    options = client_options(config, identifier="relieve-x", will=will)
    context = options.pop("tls_context")
    assert options == {
        "hostname": "mqtt.example",
        "port": 8883,
        "username": USER,
        "password": "from the file",
        "identifier": "relieve-x",
        "clean_session": True,
        "keepalive": 60,
        "will": will,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    given = client_options(config, identifier="i", password=PASSWORD)
    assert given["password"] == PASSWORD
    assert tls_context(MqttConfig()) is None


def test_an_unusable_ca_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(RelieveError, match=r"cannot be read \(No such file or directory\)"):
        tls_context(MqttConfig(tls=True, ca_file=str(tmp_path / "none.pem")))
    not_pem = _secret(tmp_path, "not a certificate\n")
    with pytest.raises(RelieveError, match="holds no certificate in PEM form"):
        tls_context(MqttConfig(tls=True, ca_file=str(not_pem)))


def _connack(code: int) -> MqttConnectError:
    return MqttConnectError(ReasonCode(PacketTypes.CONNACK, identifier=code))


def _raised_from_none(error: OSError) -> aiomqtt.MqttError:
    """What aiomqtt raises when the socket fails: MqttError(str) from None."""
    try:
        try:
            raise error
        except OSError as exc:
            raise aiomqtt.MqttError(str(exc)) from None
    except aiomqtt.MqttError as wrapped:
        return wrapped


def _lost_while_reading() -> aiomqtt.MqttError:
    """What aiomqtt raises when the broker goes away while a client reads its messages."""
    lost = aiomqtt.MqttCodeError(
        ReasonCode(PacketTypes.DISCONNECT, identifier=128), "Unexpected disconnection"
    )
    error = aiomqtt.MqttError("Disconnected during message iteration")
    error.__cause__ = lost  # raise ... from lost
    return error


WITH_PASSWORD = MqttConfig(username="u", password_file="/etc/relieve/mqtt")  # noqa: S106 - a path, no password


@pytest.mark.parametrize(
    ("error", "config", "expected"),
    [
        (_connack(134), WITH_PASSWORD, "refused the username or password of user 'u'; check"),
        (MqttConnectError(4), WITH_PASSWORD, "refused the username or password of user 'u'"),
        (_connack(134), MqttConfig(), "wants a username and password"),
        (_connack(135), MqttConfig(), "refused an anonymous connection (not authorised)"),
        (_connack(135), MqttConfig(username="u"), "refused user 'u' without a password"),
        (MqttConnectError(5), WITH_PASSWORD, "of user 'u' (it answered 'not authorised')"),
        (_connack(133), MqttConfig(), "refused the client identifier"),
        (_connack(136), MqttConfig(), "says it is unavailable now"),
        (_raised_from_none(socket.gaierror(-2, "Name or service not known")), MqttConfig(),
         "host name 'localhost' cannot be resolved"),
        (_raised_from_none(ConnectionRefusedError(111, "Connection refused")), MqttConfig(),
         "nothing listens on localhost:1883; is the broker running?"),
        (_raised_from_none(OSError(113, "No route to host")), MqttConfig(host="10.9.9.9"),
         "10.9.9.9 cannot be reached (No route to host)"),
        (_raised_from_none(TimeoutError("timed out")), MqttConfig(host="::1"),
         "the broker at [::1]:1883 did not answer in time"),
        (aiomqtt.MqttCodeError(7, "Unexpected disconnection"), MqttConfig(),
         "the connection to the broker at localhost:1883 was lost."),
        (_lost_while_reading(), MqttConfig(),
         "the connection to the broker at localhost:1883 was lost."),
        (aiomqtt.MqttCodeError(ReasonCode(PacketTypes.DISCONNECT, identifier=142), "x"),
         MqttConfig(), "was lost (Session taken over)."),
    ],
)  # fmt: skip
def test_every_failure_is_one_sentence(
    error: BaseException, config: MqttConfig, expected: str
) -> None:
    sentence = describe_mqtt_error(error, config)
    assert expected in sentence
    assert _is_sentence(sentence), sentence


# --- relieve config check ---------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    """Where the tests write their config.toml (passed with --config)."""
    return tmp_path / "settings.toml"


def _check(capsys: pytest.CaptureFixture[str], tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["--config-dir", str(tmp_path / "config"), "config", "check", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def _check_file(
    capsys: pytest.CaptureFixture[str], settings: Path, text: str
) -> tuple[int, str, str]:
    settings.write_text(text, encoding="utf-8")
    return _check(capsys, settings.parent, "--config", str(settings))


def test_no_settings_file_means_no_mqtt(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = _check(capsys, tmp_path)
    path = tmp_path / "config" / "config.toml"
    assert (code, out, err) == (
        0,
        f"No settings file at {path}: the daemon runs without MQTT.\n",
        "",
    )


def test_a_file_without_an_mqtt_table_means_no_mqtt(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "config.toml"
    path.write_text("# MQTT later\n", encoding="utf-8")
    code, out, err = _check(capsys, tmp_path)
    assert (code, out, err) == (
        0,
        f"{path} has no [mqtt] table: the daemon runs without MQTT.\n",
        "",
    )


def test_a_missing_config_file_given_is_an_error(
    capsys: pytest.CaptureFixture[str], settings: Path
) -> None:
    code, out, err = _check(capsys, settings.parent, "--config", str(settings))
    assert (code, out) == (1, "")
    assert err == f"relieve: {settings}: The file does not exist; check the path.\n"


def test_problems_are_printed_one_a_line(
    capsys: pytest.CaptureFixture[str], settings: Path
) -> None:
    code, out, err = _check_file(capsys, settings, '[mqtt]\nport = 0\nnode = "A B"\n')
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith(f"relieve: {settings}: mqtt.port: input should be greater")
    assert lines[1].startswith(f"relieve: {settings}: mqtt.node: use lower-case letters")
    code, _, err = _check_file(capsys, settings, "[mqtt]\nremote_start = true\ntls = true\n")
    assert code == 1
    assert err.startswith(f"relieve: {settings}: mqtt.remote_start is true but")


def test_an_anonymous_broker(
    capsys: pytest.CaptureFixture[str], settings: Path, broker: Broker
) -> None:
    code, out, err = _check_file(capsys, settings, broker.mqtt_toml(node="bedroom"))
    where = f"127.0.0.1:{broker.port}"
    assert (code, err) == (0, ""), err
    assert out.splitlines() == [
        f"{settings}: valid; node bedroom, broker {where}.",
        f"broker {where}: connected anonymously, test publish delivered.",
    ]


async def test_the_test_publish_reaches_the_broker_once_not_retained(broker: Broker) -> None:
    config = MqttConfig(host=broker.host, port=broker.port, node="bedroom")
    async with Collector(broker, "relieve/#") as seen:
        verdict = await config_check.check_broker(config)
        assert verdict.ok, verdict.sentence
        message = await seen.wait_for("relieve/bedroom/check")
    assert message.payload == config_check.CHECK_PAYLOAD
    assert not message.retain
    assert seen.topics() == ["relieve/bedroom/check"]


def test_a_password_broker_with_the_right_password(
    capsys: pytest.CaptureFixture[str],
    settings: Path,
    tmp_path: Path,
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(password=(USER, PASSWORD))
    secret = _secret(tmp_path, f"{PASSWORD}\n")
    code, out, err = _check_file(capsys, settings, broker.mqtt_toml(password_file=str(secret)))
    assert (code, err) == (0, ""), err
    assert out.splitlines()[-1] == (
        f"broker 127.0.0.1:{broker.port}: connected, authenticated as {USER}, test publish "
        "delivered."
    )


def test_a_password_broker_with_a_wrong_password_or_none(
    capsys: pytest.CaptureFixture[str],
    settings: Path,
    tmp_path: Path,
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(password=(USER, PASSWORD))
    wrong = _secret(tmp_path, "incorrect\n")
    code, _, err = _check_file(capsys, settings, broker.mqtt_toml(password_file=str(wrong)))
    assert code == 1
    # mosquitto answers a wrong password with MQTT 3.1.1's 5, "not authorised"
    assert err == (
        f"relieve: the broker refused the username or password of user '{USER}' (it answered "
        "'not authorised'); check mqtt.username and the password file, and that the broker "
        "lets this user connect.\n"
    )
    code, _, err = _check_file(capsys, settings, broker.mqtt_toml(username="someone"))
    assert code == 1
    assert "refused user 'someone' without a password" in err
    anonymous = broker.mqtt_toml().replace(f'username = "{USER}"\n', "")
    code, _, err = _check_file(capsys, settings, anonymous)
    assert code == 1
    assert "refused an anonymous connection (not authorised)" in err


def test_a_password_file_readable_by_others_is_refused_before_connecting(
    capsys: pytest.CaptureFixture[str],
    settings: Path,
    tmp_path: Path,
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(password=(USER, PASSWORD))
    shared = _secret(tmp_path, f"{PASSWORD}\n", mode=0o640)
    code, _, err = _check_file(capsys, settings, broker.mqtt_toml(password_file=str(shared)))
    assert code == 1
    assert err == (
        f"relieve: The MQTT password file {shared} can be read by others; make it private "
        f"(chmod 600 {shared}).\n"
    )
    assert "New client connected" not in broker.log()


def test_a_tls_broker_verified_with_its_ca(
    capsys: pytest.CaptureFixture[str],
    settings: Path,
    tmp_path: Path,
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(tls=True, password=(USER, PASSWORD))
    secret = _secret(tmp_path, PASSWORD)
    code, out, err = _check_file(capsys, settings, broker.mqtt_toml(password_file=str(secret)))
    assert (code, err) == (0, ""), err
    assert out.splitlines()[-1] == (
        f"broker localhost:{broker.port}: connected, authenticated as {USER}, test publish "
        "delivered (TLS verified)."
    )


@TLS_HANDSHAKE_FAILS
def test_a_tls_broker_with_the_wrong_ca_or_none(
    capsys: pytest.CaptureFixture[str], settings: Path, broker_factory: BrokerFactory
) -> None:
    broker = broker_factory(tls=True)
    assert broker.wrong_ca_file is not None
    code, out, err = _check_file(
        capsys, settings, broker.mqtt_toml(ca_file=str(broker.wrong_ca_file))
    )
    assert code == 1
    assert "connected" not in out
    assert err.startswith(
        f"relieve: the broker's certificate could not be verified with {broker.wrong_ca_file} ("
    )
    without_ca = broker.mqtt_toml().replace(f'ca_file = "{broker.ca_file}"\n', "")
    code, _, err = _check_file(capsys, settings, without_ca)
    assert code == 1
    assert err.startswith(
        "relieve: the broker's certificate could not be verified with the system's CAs ("
    )


@TLS_HANDSHAKE_FAILS
def test_a_tls_broker_under_a_name_its_certificate_lacks(
    capsys: pytest.CaptureFixture[str], settings: Path, broker_factory: BrokerFactory
) -> None:
    broker = broker_factory(tls=True)
    code, _, err = _check_file(capsys, settings, broker.mqtt_toml(host="127.1"))
    assert code == 1
    assert err.startswith("relieve: the broker's certificate is not for 127.1 (Hostname mismatch")


@TLS_HANDSHAKE_FAILS
def test_tls_to_a_plain_port(
    capsys: pytest.CaptureFixture[str], settings: Path, broker_factory: BrokerFactory
) -> None:
    plain, tls = broker_factory(), broker_factory(tls=True)
    code, _, err = _check_file(
        capsys, settings, plain.mqtt_toml(tls=True, ca_file=str(tls.ca_file))
    )
    assert code == 1
    assert err == (
        f"relieve: 127.0.0.1:{plain.port} closed the connection during the TLS handshake; "
        "does that port speak TLS? (tls = true needs a TLS listener)\n"
    )


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_a_port_that_never_answers_times_out(
    capsys: pytest.CaptureFixture[str],
    settings: Path,
    silent_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config_check, "CHECK_TIMEOUT_S", 0.3)
    code, _, err = _check_file(
        capsys, settings, f"[mqtt]\nhost = '127.0.0.1'\nport = {silent_port}\n"
    )
    assert code == 1
    assert err == (
        f"relieve: the broker at 127.0.0.1:{silent_port} did not answer in time; check "
        "mqtt.host and mqtt.port (a TLS port does not answer without tls = true).\n"
    )


def test_nothing_listening(
    capsys: pytest.CaptureFixture[str], settings: Path, broker: Broker
) -> None:
    broker.stop()  # its port is free now, and was ours
    code, out, err = _check_file(capsys, settings, broker.mqtt_toml())
    assert code == 1
    assert out.endswith(f", broker 127.0.0.1:{broker.port}.\n")
    assert err == (f"relieve: nothing listens on 127.0.0.1:{broker.port}; is the broker running?\n")


def test_the_installed_command_prints_no_traceback(settings: Path, broker: Broker) -> None:
    settings.write_text(broker.mqtt_toml(port=broker.port), encoding="utf-8")
    ok = subprocess.run(
        [RELIEVE, "config", "check", "--config", str(settings)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.splitlines()[-1].endswith("test publish delivered.")
    broker.kill()
    failed = subprocess.run(
        [RELIEVE, "config", "check", "--config", str(settings)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stderr == (
        f"relieve: nothing listens on 127.0.0.1:{broker.port}; is the broker running?\n"
    )


# --- the broker of the tests itself --------------------------------------------------------------


async def test_the_broker_comes_back_on_the_same_port(broker: Broker) -> None:
    port = broker.port
    async with broker.client() as client:
        await client.publish("t/1", b"x", qos=1)
    broker.kill()
    assert not broker.running
    broker.start()
    assert broker.port == port
    async with Collector(broker, "t/#") as seen, broker.client() as client:
        await client.publish("t/2", b"again", qos=1, retain=True)
        assert await seen.wait_for("t/2") == ("t/2", b"again", False)
    assert "mosquitto version" in broker.log()


async def test_a_publish_the_acl_denies_is_acknowledged_all_the_same(
    tmp_path: Path, broker_factory: BrokerFactory
) -> None:
    # MQTT 3.1.1 has no way to refuse a publish: mosquitto acknowledges it and drops it, so the
    # check's "delivered" means "acknowledged by the broker" (docs/mqtt.md says so)
    acl = f"user {USER}\ntopic read relieve/#\ntopic write relieve/bedroom/status\n"
    broker = broker_factory(password=(USER, PASSWORD), acl=acl)
    secret = _secret(tmp_path, PASSWORD)
    config = MqttConfig(
        host=broker.host, port=broker.port, username=USER, password_file=str(secret), node="bedroom"
    )
    async with Collector(broker, "relieve/#") as seen:
        verdict = await config_check.check_broker(config)
        assert verdict.ok, verdict.sentence
        async with broker.client() as client:  # after the check's publish, in order
            await client.publish("relieve/bedroom/status", b"online", qos=1)
        await seen.wait_for("relieve/bedroom/status")
    assert seen.topics() == ["relieve/bedroom/status"]
    assert "Denied PUBLISH from relieve-bedroom-check" in broker.log()
