"""A throw-away certificate authority and server certificate for the local services.

``twinstream services up --secure`` (and ``--redis-tls``) need TLS material
that a laptop has no reason to own: this module makes a self-signed CA and one
server certificate for ``127.0.0.1`` / ``localhost``, signed by it, once per
state dir. Clients trust ``ca.pem`` (``TWIN_KAFKA_SSL_CAFILE``).

Files, in ``$TWIN_STATE_DIR/tls``::

    ca.pem           the CA certificate (public: give it to clients)
    ca-key.pem       the CA's private key (0600; only used to sign server.pem)
    server.pem       the server certificate
    server-key.pem   its private key, unencrypted PKCS#8 (0600)
    server-bundle.pem  server-key.pem + server.pem + ca.pem (0600): Kafka's PEM keystore

Python's ``cryptography`` makes them when it is importable; otherwise the
``openssl`` command line does. Never use this CA outside a development machine.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LocalTls", "TlsMaterialError", "ensure_local_tls"]

_VALID_DAYS = 825
_SERVER_NAMES = ("localhost",)
_SERVER_IPS = ("127.0.0.1", "::1")


class TlsMaterialError(Exception):
    """The local CA or server certificate could not be made.

    Install ``cryptography`` (``pip install cryptography``) or the ``openssl``
    command line, or remove ``$TWIN_STATE_DIR/tls`` if it holds a partial set.
    """


@dataclass(frozen=True)
class LocalTls:
    """Paths of the local TLS material."""

    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca-key.pem"

    @property
    def cert(self) -> Path:
        return self.root / "server.pem"

    @property
    def key(self) -> Path:
        return self.root / "server-key.pem"

    @property
    def bundle(self) -> Path:
        return self.root / "server-bundle.pem"

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.ca, self.ca_key, self.cert, self.key, self.bundle))


def ensure_local_tls(root: Path) -> LocalTls:
    """Make the CA and server certificate under ``root`` unless they exist; return the paths.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     tls = ensure_local_tls(Path(tmp) / "tls")
    ...     kept = ensure_local_tls(tls.root).ca.read_bytes() == tls.ca.read_bytes()
    ...     tls.complete(), oct(tls.key.stat().st_mode & 0o777), kept
    (True, '0o600', True)
    """
    tls = LocalTls(root)
    if tls.complete():
        return tls
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    # Made in a sibling folder and moved into place, so a crash leaves no half set.
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".tls-") as tmp:
        staged = LocalTls(Path(tmp))
        try:
            _make_with_cryptography(staged)
        except ImportError:
            _make_with_openssl(staged)
        for src in (staged.ca_key, staged.key):
            src.chmod(0o600)
        staged.bundle.write_bytes(
            staged.key.read_bytes() + staged.cert.read_bytes() + staged.ca.read_bytes()
        )
        staged.bundle.chmod(0o600)
        for name in ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "server-bundle.pem"):
            os.replace(staged.root / name, root / name)
    return tls


def _make_with_cryptography(tls: LocalTls) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = (
        now - datetime.timedelta(minutes=5),
        now + datetime.timedelta(days=_VALID_DAYS),
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twinstream local dev CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in _SERVER_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in _SERVER_IPS]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pkcs8 = serialization.PrivateFormat.PKCS8
    plain = serialization.NoEncryption()
    pem = serialization.Encoding.PEM
    tls.ca_key.write_bytes(ca_key.private_bytes(pem, pkcs8, plain))
    tls.key.write_bytes(key.private_bytes(pem, pkcs8, plain))
    tls.ca.write_bytes(ca_cert.public_bytes(pem))
    tls.cert.write_bytes(cert.public_bytes(pem))


def _make_with_openssl(tls: LocalTls) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsMaterialError(
            "making a local CA needs Python's cryptography or the openssl command:"
            " pip install cryptography, or apt-get install -y openssl"
        )
    san = ",".join([f"DNS:{n}" for n in _SERVER_NAMES] + [f"IP:{ip}" for ip in _SERVER_IPS])
    ext = tls.root / "server.ext"
    ext.write_text(
        f"basicConstraints=critical,CA:FALSE\nsubjectAltName={san}\nextendedKeyUsage=serverAuth\n"
    )
    ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    ca_subject = "/CN=twinstream local dev CA"
    csr = str(tls.root / "server.csr")
    days = str(_VALID_DAYS)
    steps = [
        [openssl, "genpkey", *ec, "-out", str(tls.ca_key)],
        [
            *(openssl, "req", "-x509", "-new", "-key", str(tls.ca_key), "-sha256", "-days", days),
            *("-subj", ca_subject, "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0"),
            *("-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(tls.ca)),
        ],
        [openssl, "genpkey", *ec, "-out", str(tls.key)],
        [openssl, "req", "-new", "-key", str(tls.key), "-subj", "/CN=localhost", "-out", csr],
        [
            *(openssl, "x509", "-req", "-in", csr, "-CA", str(tls.ca), "-CAkey", str(tls.ca_key)),
            *("-CAcreateserial", "-sha256", "-days", days, "-extfile", str(ext)),
            *("-out", str(tls.cert)),
        ],
    ]
    for cmd in steps:
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise TlsMaterialError(f"{' '.join(cmd[:2])} failed: {result.stderr.strip()[-500:]}")
