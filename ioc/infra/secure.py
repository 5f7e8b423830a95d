"""``ioc infra up --secure``: a CA and a server certificate for 127.0.0.1, and the users and passwords of the
local Kafka (SASL/SCRAM-SHA-512), Redis (an ACL user) and Mosquitto (a password file), under
``<run_dir>/secure``.

Generated once per run dir and reused: the passwords live in ``<run_dir>/secure/client.env`` (mode 0600),
the ``IOC_…`` environment every ioc process needs to reach the secured servers. The certificates are made
with the ``openssl`` command (no Python crypto library is a dependency of ioc).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from ioc.infra.process import InfraError
from ioc.settings import Settings

log = logging.getLogger("ioc.infra")

USER = "ioc"  # the one user of each server; the broker uses it for itself too
CERT_DAYS = 825  # what browsers and most TLS stacks still accept for a server certificate
SECRET_NAMES = ("IOC_KAFKA_PASSWORD", "IOC_REDIS_PASSWORD", "IOC_MQTT_PASSWORD")


def secure_dir(settings: Settings) -> Path:
    """``<run_dir>/secure``; or, when ``tls_ca_file`` is a CA whose key lies beside it (another run dir's),
    that directory: a server started with settings that trust that CA gets a certificate from it."""
    trusted = settings.tls_ca_file
    if trusted is not None and (trusted.parent / "ca.key").exists():
        return trusted.parent.absolute()
    return (settings.run_dir / "secure").absolute()


def env_file(settings: Settings) -> Path:
    return secure_dir(settings) / "client.env"


def ca_file(settings: Settings) -> Path:
    return secure_dir(settings) / "ca.pem"


def server_files(settings: Settings) -> tuple[Path, Path]:
    """The local servers' certificate (PEM, signed by the run dir's CA) and its private key (PKCS#8)."""
    directory = secure_dir(settings)
    return directory / "server.pem", directory / "server.key"


def ensure_certificates(settings: Settings) -> None:
    """A CA and a server certificate for 127.0.0.1 and localhost under ``<run_dir>/secure``, once."""
    directory = secure_dir(settings)
    cert, key = server_files(settings)
    if cert.exists() and key.exists() and ca_file(settings).exists():
        return
    openssl = shutil.which("openssl")
    if openssl is None:
        raise InfraError("`ioc infra up --secure` needs the openssl command (apt-get install -y openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    log.info("making a CA and a server certificate in %s…", directory)
    ca_key, csr = directory / "ca.key", directory / "server.csr"
    extensions = directory / "server.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    for argv in (
        # The CA: self-signed, its key never leaves the run dir.
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out",
         ca_file(settings), "-days", str(CERT_DAYS), "-subj", "/CN=ioc local CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        # The servers' key, without a passphrase: Redis and Mosquitto read it as it is (mode 0600);
        # Kafka gets it in a PKCS#12 key store (ioc.infra.kafka).
        [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
        [openssl, "req", "-new", "-key", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca_file(settings), "-CAkey", ca_key,
         "-CAcreateserial", "-out", cert, "-days", str(CERT_DAYS), "-extfile", extensions],
    ):  # fmt: skip
        result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise InfraError(f"`openssl {argv[1]}` failed:\n{result.stderr.strip()[-2000:]}")
    for path in (ca_key, key):
        path.chmod(0o600)
    csr.unlink(missing_ok=True)


def client_env(settings: Settings) -> dict[str, str]:
    """The ``IOC_…`` variables that make ioc reach this run dir's secured servers: read from
    ``client.env``, made (random passwords, mode 0600) on first use."""
    path = env_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        values = {
            "IOC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "IOC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "IOC_KAFKA_USERNAME": USER,
            "IOC_KAFKA_PASSWORD": secrets.token_hex(16),
            "IOC_REDIS_TLS": "true",
            "IOC_REDIS_USERNAME": USER,
            "IOC_REDIS_PASSWORD": secrets.token_hex(16),
            "IOC_MQTT_TLS": "true",
            "IOC_MQTT_USERNAME": USER,
            "IOC_MQTT_PASSWORD": secrets.token_hex(16),
            "IOC_TLS_CA_FILE": str(ca_file(settings)),
        }
        # Created 0600 before anything is written: the passwords are never readable by others.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write("# Generated by `ioc infra up --secure`: the environment that reaches this run dir's\n")
            out.write("# secured Kafka, Redis and Mosquitto. Load it with: set -a; . <this file>; set +a\n")
            out.writelines(f"{name}={value}\n" for name, value in values.items())
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def masked(env: dict[str, str]) -> dict[str, str]:
    """``env`` as it may be shown: passwords as ***."""
    return {name: "***" if name in SECRET_NAMES else value for name, value in env.items()}


def client_settings(settings: Settings) -> dict[str, str]:
    """``client_env`` as settings fields (``{"kafka_username": "ioc", …}``), to apply to Settings."""
    return {name.removeprefix("IOC_").lower(): value for name, value in client_env(settings).items()}


def secured(settings: Settings) -> Settings:
    """``settings`` with this run dir's secure client environment applied (the local servers then start
    secured, and every client made from the result connects to them that way)."""
    return Settings.model_validate(settings.model_dump() | client_settings(settings))
