"""`db4 dev --tls`: a throwaway CA, certificates and tokens for a local secured cluster.

Everything lives in DATA_DIR/tls and is made once; a restart on the same data dir reuses it
(the tokens' hashes are in etcd by then). Files:
- ca.crt: the CA every part and the SDK check peers against (ca.key signs, then stays here);
- server.crt/server.key: the certificate nodes and the router serve (127.0.0.1, ::1,
  localhost) and show to nodes as clients (mutual TLS);
- client.crt/client.key: a client certificate for the SDK (needed for direct mode: nodes
  require client certificates);
- admin.token: a token with role admin; internal.token: role node, for routers and nodes.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from db4rpc.tokens import new_token

VALID_DAYS = 365


@dataclass(frozen=True)
class DevTls:
    """Paths of the files of one `db4 dev --tls` data dir."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.dir / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.dir / "client.key"

    @property
    def admin_token(self) -> Path:
        return self.dir / "admin.token"

    @property
    def internal_token(self) -> Path:
        return self.dir / "internal.token"

    def server_flags(self, router: bool) -> list[str]:
        """The flags of `db4 node` / `db4 router` for this material."""
        flags = ["--tls-cert", str(self.server_cert), "--tls-key", str(self.server_key),
                 "--tls-ca", str(self.ca), "--auth", "true",
                 "--token-file", str(self.internal_token)]
        if router:
            flags += ["--admin-token-file", str(self.admin_token)]
        return flags

    def sdk_tls(self) -> dict[str, str]:
        """The `tls=` argument of Client/AsyncClient."""
        return {"root_certificates": str(self.ca), "certificate_chain": str(self.client_cert),
                "private_key": str(self.client_key)}

    def token(self) -> str:
        return self.admin_token.read_text().strip()


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "db4 dev"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(subject: str, key: ec.EllipticCurvePrivateKey, ca_name: x509.Name,
           ca_key: ec.EllipticCurvePrivateKey, server: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(ca_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
    builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def ensure(data_dir: Path) -> DevTls:
    """The TLS material and tokens under DATA_DIR/tls, made when missing."""
    tls = DevTls(data_dir / "tls")
    files = (tls.ca, tls.server_cert, tls.server_key, tls.client_cert, tls.client_key,
             tls.admin_token, tls.internal_token)
    if all(f.exists() for f in files):
        return tls
    tls.dir.mkdir(parents=True, exist_ok=True)
    tls.dir.chmod(0o700)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, ca_name = _key(), _name("db4 dev CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    _write_key(tls.dir / "ca.key", ca_key)
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for cert_path, key_path, subject, server in (
            (tls.server_cert, tls.server_key, "db4 dev server", True),
            (tls.client_cert, tls.client_key, "db4 dev client", False)):
        key = _key()
        _write_key(key_path, key)
        cert = _issue(subject, key, ca_name, ca_key, server)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    for path in (tls.admin_token, tls.internal_token):
        path.write_text(new_token()[1] + "\n")
        path.chmod(0o600)
    return tls
