"""The local certificate authority and the gateway's TLS certificate.

AWS Amplify JS v6 always turns an Event API's HTTP endpoint into a ``wss://`` URL (it rewrites
``http://`` and ``https://`` alike to ``wss://``: aws-amplify/amplify-js,
packages/api-graphql/src/Providers/AWSWebSocketProvider/appsyncUrl.ts, ``getRealtimeEndpointUrl``),
so the local gateway must speak TLS. A CA is made once per machine under ``.local/ca/`` (never
committed: ``.local/`` is ignored) and signs a fresh leaf certificate at each start for the names
the gateway answers to. Clients trust the CA's PEM, which ``outputs.json`` names as ``caCertFile``.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
#: Names every leaf certificate carries: the loopback host names and addresses.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_CA_YEARS = 10
# Browsers and Apple platforms refuse leaf certificates valid for more than 398 days; the leaf is
# remade at each start anyway.
_LEAF_DAYS = 397


@dataclass(frozen=True)
class LocalCa:
    """The machine's local CA: its PEM (what clients trust) and its private key."""

    cert_file: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def server_context(self, names: Iterable[str], workdir: Path) -> ssl.SSLContext:
        """A server-side TLS context with a new leaf certificate for ``names``."""
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = _leaf_certificate(self, leaf_key, _unique(names))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # ssl loads a chain only from files; write them where only this user can read, then drop.
        workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            chain, key = Path(tmp) / "leaf.pem", Path(tmp) / "leaf-key.pem"
            chain.write_bytes(
                leaf.public_bytes(serialization.Encoding.PEM)
                + self.cert.public_bytes(serialization.Encoding.PEM)
            )
            _write_private(key, _pem_key(leaf_key))
            context.load_cert_chain(chain, key)
        return context


def load_or_create_ca(directory: Path) -> LocalCa:
    """The CA under ``directory``, made on first use (safe when several gateways start at once)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    cert_file, key_file = directory / CA_CERT, directory / CA_KEY
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cert_file.is_file() and key_file.is_file()):
            key = ec.generate_private_key(ec.SECP256R1())
            _write_private(key_file, _pem_key(key))
            cert_file.write_bytes(_ca_certificate(key).public_bytes(serialization.Encoding.PEM))
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_file} is not an EC key; delete {directory} to make a new CA")
    return LocalCa(cert_file=cert_file, cert=cert, key=loaded)


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ai-gateway local"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"ai-gateway local CA ({os.uname().nodename})"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * _CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf_certificate(
    ca: LocalCa, key: ec.EllipticCurvePrivateKey, names: list[str]
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
        .sign(ca.key, hashes.SHA256())
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(n.strip("[]") for n in names if n))


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
