"""Every file `run` will load is loaded by `check`: TLS files and secret files, at their line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.commerce.http import HttpCommerce
from gateway.config.load import ConfigError, check_command, load_config
from gateway.config.models import CommerceSection
from gateway.config.tls import mqtt_tls_context, shop_tls_context
from gateway.errors import CommerceConfigError, TlsFileError

ROOT = Path(__file__).resolve().parents[2]
COMMERCE = "commerce:\n  base_url: https://shop.example/api/v1\n  token: t\n"
PRODUCTS = "products:\n  coffee:\n    sku: LAVAZZA-1KG\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a client certificate with its key, a second key, an encrypted key, junk."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=ca")
    openssl("req", "-x509", *ec, "-keyout", "client.key", "-out", "client.pem", "-subj", "/CN=gw")
    openssl("req", "-x509", *ec, "-keyout", "other.key", "-out", "other.pem", "-subj", "/CN=x")
    openssl("pkey", "-in", "client.key", "-aes256", "-passout", "pass:pw", "-out", "locked.key")
    (d / "junk.pem").write_text("this is not a certificate\n")
    for key in d.glob("*.key"):
        key.chmod(0o600)
    return d


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gw.yaml"
    path.write_text("gateway:\n  id: home\n" + text)
    path.chmod(0o600)
    return path


def _errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    return [message.removeprefix(f"{path}:") for message in raised.value.messages]


def test_a_commerce_ca_file_that_is_not_pem_fails_check_at_its_line(
    tmp_path: Path, pki: Path
) -> None:
    path = _write(tmp_path, COMMERCE + f"  ca_file: {pki / 'junk.pem'}\n" + PRODUCTS)
    assert _errors(path) == [
        f"6:12: commerce.ca_file: {pki / 'junk.pem'} holds no PEM certificate — give the CA "
        "certificate as a PEM file starting with -----BEGIN CERTIFICATE-----"
    ]
    out, err = io.StringIO(), io.StringIO()
    assert check_command(str(path), out, err, env={}) == 2
    assert "commerce.ca_file" in err.getvalue() and out.getvalue() == ""


def test_a_good_commerce_ca_file_passes_and_is_what_the_shop_client_loads(
    tmp_path: Path, pki: Path
) -> None:
    path = _write(tmp_path, COMMERCE + f"  ca_file: {pki / 'ca.pem'}\n" + PRODUCTS)
    config = load_config(path, env={}).config
    HttpCommerce(config.commerce).close()
    assert shop_tls_context(str(pki / "ca.pem")).get_ca_certs()[0]["subject"] == (
        (("commonName", "ca"),),
    )


def test_the_shop_client_refuses_the_file_check_refuses(pki: Path) -> None:
    with pytest.raises(TlsFileError, match="holds no PEM certificate") as raised:
        shop_tls_context(str(pki / "junk.pem"))
    assert raised.value.setting == "ca_file"
    settings = CommerceSection(base_url="https://shop.test", ca_file=str(pki / "junk.pem"))
    with pytest.raises(
        CommerceConfigError, match=r"commerce\.ca_file: .* holds no PEM certificate"
    ):
        HttpCommerce(settings)


def test_without_verification_the_ca_file_is_not_loaded(tmp_path: Path, pki: Path) -> None:
    text = COMMERCE + f"  verify_tls: false\n  ca_file: {pki / 'junk.pem'}\n" + PRODUCTS
    assert load_config(_write(tmp_path, text), env={}).config.commerce.verify_tls is False


def _mqtt(**files: Path) -> str:
    lines = "".join(f"  {key}: {value}\n" for key, value in files.items())
    return "mqtt:\n  url: mqtts://broker.lan\n" + lines + COMMERCE + PRODUCTS


def test_a_client_key_that_does_not_match_its_certificate_fails_check(
    tmp_path: Path, pki: Path
) -> None:
    text = _mqtt(ca_file=pki / "ca.pem", cert_file=pki / "client.pem", key_file=pki / "other.key")
    assert _errors(_write(tmp_path, text)) == [
        f"7:13: mqtt.key_file: {pki / 'other.key'} does not match the certificate in "
        f"{pki / 'client.pem'} — give the private key that certificate was issued for"
    ]


def test_matching_mqtt_files_pass(tmp_path: Path, pki: Path) -> None:
    text = _mqtt(ca_file=pki / "ca.pem", cert_file=pki / "client.pem", key_file=pki / "client.key")
    config = load_config(_write(tmp_path, text), env={}).config
    assert config.mqtt.key_file == str(pki / "client.key")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"ca_file": "junk.pem"},
            "5:12: mqtt.ca_file: {d}/junk.pem holds no PEM certificate — give the CA "
            "certificate as a PEM file starting with -----BEGIN CERTIFICATE-----",
        ),
        (
            {"cert_file": "junk.pem", "key_file": "client.key"},
            "5:14: mqtt.cert_file: {d}/junk.pem holds no PEM certificate — give the client "
            "certificate as a PEM file starting with -----BEGIN CERTIFICATE-----",
        ),
        (
            {"cert_file": "client.pem", "key_file": "junk.pem"},
            "6:13: mqtt.key_file: {d}/junk.pem holds no PEM private key — give the "
            "certificate's key as a PEM file starting with -----BEGIN PRIVATE KEY-----",
        ),
        (
            {"cert_file": "client.pem"},
            "5:14: mqtt.cert_file: {d}/client.pem holds no private key — add mqtt.key_file "
            "with the key",
        ),
        (
            {"cert_file": "client.pem", "key_file": "locked.key"},
            "6:13: mqtt.key_file: {d}/locked.key holds a key protected by a passphrase — the "
            "gateway starts unattended: store the key without one (openssl pkey -in "
            "{d}/locked.key -out PLAIN.key)",
        ),
    ],
    ids=["ca-not-pem", "cert-not-pem", "key-not-pem", "cert-without-key", "encrypted-key"],
)
def test_each_unusable_mqtt_file_is_named_with_a_fix(
    tmp_path: Path, pki: Path, files: dict[str, str], expected: str
) -> None:
    text = _mqtt(**{key: pki / name for key, name in files.items()})
    assert _errors(_write(tmp_path, text)) == [expected.format(d=pki)]


def test_tls_files_with_a_plain_broker_url_fail_check_as_run_refuses_them(
    tmp_path: Path, pki: Path
) -> None:
    text = f"mqtt:\n  url: mqtt://broker.lan\n  ca_file: {pki / 'ca.pem'}\n" + COMMERCE + PRODUCTS
    assert _errors(_write(tmp_path, text)) == [
        "5:3: mqtt.ca_file: is set but mqtt.url 'mqtt://broker.lan' is plain MQTT — use "
        "mqtts://HOST:8883 for TLS, or remove mqtt.ca_file"
    ]


def test_a_key_without_a_certificate_is_a_warning(tmp_path: Path, pki: Path) -> None:
    loaded = load_config(_write(tmp_path, _mqtt(key_file=pki / "client.key")), env={})
    assert [w.removeprefix(f"{tmp_path / 'gw.yaml'}:") for w in loaded.warnings] == [
        "5:13: warning: mqtt.key_file: is ignored without mqtt.cert_file — add the client "
        "certificate, or remove key_file"
    ]


def test_the_mqtt_files_load_as_the_client_loads_them(tmp_path: Path, pki: Path) -> None:
    both = tmp_path / "client-and-key.pem"  # one file may hold the certificate and its key
    both.write_text((pki / "client.pem").read_text() + (pki / "client.key").read_text())
    context = mqtt_tls_context(str(pki / "ca.pem"), str(both), None)
    assert [ca["subject"] for ca in context.get_ca_certs()] == [((("commonName", "ca"),),)]
    with pytest.raises(TlsFileError) as raised:
        mqtt_tls_context(None, str(pki / "client.pem"), str(pki / "other.key"))
    assert raised.value.setting == "key_file"


def test_home_relative_tls_paths_are_the_files_run_will_open(
    tmp_path: Path, pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(pki))
    path = _write(tmp_path, COMMERCE.replace("  token: t\n", "  token: t\n  ca_file: ~/ca.pem\n"))
    path.write_text(path.read_text() + PRODUCTS)
    assert load_config(path, env={}).config.commerce.ca_file == str(pki / "ca.pem")


def test_a_token_file_found_in_the_credentials_directory_is_the_one_re_read(
    tmp_path: Path,
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "shop-token").write_text("tok\n")
    (credentials / "shop-token").chmod(0o600)
    text = "commerce:\n  base_url: https://shop.example/api/v1\n  token_file: shop-token\n"
    path = _write(tmp_path, text + PRODUCTS)
    loaded = load_config(path, env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert loaded.config.commerce.token_file == str(credentials / "shop-token")


def test_run_with_an_unusable_file_exits_with_the_message_and_no_traceback(
    tmp_path: Path, pki: Path
) -> None:
    text = _mqtt(cert_file=pki / "client.pem", key_file=pki / "other.key")
    path = _write(tmp_path, text)
    for command in ("check", "run"):
        done = subprocess.run(
            [sys.executable, "-m", "gateway", command, "--config", str(path)],
            check=False,
            cwd=ROOT,
            env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 2, output
        assert f"{path}:6:13: mqtt.key_file: {pki / 'other.key'} does not match" in output
        assert "Traceback" not in output
