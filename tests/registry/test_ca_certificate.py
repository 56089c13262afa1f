"""A generic registry served with TLS from a private CA: the account's CA certificate makes it trusted."""

from __future__ import annotations

import datetime
import ipaddress
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from registry.models import RegistryAccount
from registry.services import check_login
from tests.fixtures.registry import start_distribution

pytestmark = pytest.mark.django_db


def _certificate(subject: str, key, issuer_name, issuer_key, ca: bool):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_registry():
    with tempfile.TemporaryDirectory(prefix="registry-tls-") as directory:
        path = Path(directory)
        ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("test CA", ca_key, None, ca_key, ca=True)
        server = _certificate("127.0.0.1", server_key, ca.subject, ca_key, ca=False)
        (path / "server.crt").write_bytes(server.public_bytes(serialization.Encoding.PEM))
        (path / "server.key").write_bytes(server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        registry = start_distribution(path, tls=(path / "server.crt", path / "server.key"))
        yield registry, ca.public_bytes(serialization.Encoding.PEM).decode()
        registry.stop()


def test_it_trusts_the_registry_with_its_ca_certificate(owner, tls_registry):
    registry, ca_pem = tls_registry
    account = RegistryAccount.objects.create(owner=owner, name="tls", kind="generic", url=registry.url,
                                             ca_certificate=ca_pem)
    assert check_login(account) == (True, f"Logged in to {registry.url} as anonymous.")


def test_without_it_the_certificate_cannot_be_verified(owner, tls_registry):
    registry, _ = tls_registry
    account = RegistryAccount.objects.create(owner=owner, name="tls", kind="generic", url=registry.url)
    ok, detail = check_login(account)
    assert ok is False
    assert detail == f"The TLS certificate of {registry.url} cannot be verified: add its CA certificate."


def test_the_api_accepts_a_pem_ca_certificate(owner_api, tls_registry):
    registry, ca_pem = tls_registry
    response = owner_api.post("/api/v1/registries/", {"name": "tls", "kind": "generic", "url": registry.url,
                                                      "ca_certificate": ca_pem}, format="json")
    assert response.status_code == 201
    assert owner_api.post(f"/api/v1/registries/{response.json()['id']}/test/").json()["ok"] is True
