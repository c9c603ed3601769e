"""HTTPS on loopback (``replicate serve --tls``): a locally generated CA and a server certificate.

Official clients turn file outputs into file objects only for ``https:`` URLs, so a server
that should look like the real API to them serves HTTPS. ``trustme`` (in the ``[local]``
extra) makes a private certificate authority; clients trust it through ``SSL_CERT_FILE``
(Python: httpx, requests, urllib) and ``NODE_EXTRA_CA_CERTS`` (Node).

Files, in the server's data directory (next to an on-disk database, in ``tls/``) or in a
temporary directory for in-memory servers:

- ``ca.pem``: the certificates to trust: this server's CA first, then the public roots of
  ``certifi`` when it is installed, so that exporting ``SSL_CERT_FILE`` does not cut a shell
  off from every other HTTPS host. Point ``SSL_CERT_FILE``/``NODE_EXTRA_CA_CERTS`` here.
- ``local-ca.pem`` / ``local-ca-key.pem``: the CA alone and its key (owner-only), kept so the
  CA stays the same across restarts of an on-disk server.
- ``server.pem``: the server's key and certificate chain (owner-only), issued afresh at each
  start for the loopback names and the bind address.
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


class TLSUnavailable(RuntimeError):
    """``trustme`` (the ``[local]`` extra) is not installed."""


@dataclass
class TLSFiles:
    """Where a TLS server's certificates are; ``temporary`` ones are removed by ``cleanup()``."""

    directory: Path
    ca_file: Path
    cert_file: Path
    temporary: bool = False

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this server (for the server's own health check)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def env(self) -> dict[str, str]:
        """Environment variables that make Python and Node clients trust this server."""
        return {"SSL_CERT_FILE": str(self.ca_file), "NODE_EXTRA_CA_CERTS": str(self.ca_file)}

    def cleanup(self) -> None:
        """Remove a temporary directory (no-op for a data directory)."""
        if self.temporary:
            shutil.rmtree(self.directory, ignore_errors=True)


def tls_directory(db: str) -> Path | None:
    """The data directory for the certificates of a server using ``db`` (None: in-memory)."""
    if not db or db == ":memory:" or db.startswith("file::memory:"):
        return None
    return Path(db).expanduser().resolve().parent / "tls"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def _public_roots() -> bytes:
    try:
        import certifi
    except ImportError:  # pragma: no cover - httpx depends on certifi
        return b""
    return Path(certifi.where()).read_bytes()


def prepare(db: str, hosts: tuple[str, ...] = ()) -> TLSFiles:
    """Create (or reuse) the CA and issue a server certificate for loopback and ``hosts``."""
    try:
        import trustme
    except ImportError as exc:
        raise TLSUnavailable(
            "--tls needs trustme (the [local] extra): pip install 'replicate[local]'"
        ) from exc
    directory = tls_directory(db)
    temporary = directory is None
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="replicate-local-tls-"))
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = directory / "local-ca.pem", directory / "local-ca-key.pem"
    ca = None
    if ca_cert.is_file() and ca_key.is_file():
        try:
            ca = trustme.CA.from_pem(ca_cert.read_bytes(), ca_key.read_bytes())
        except (ValueError, TypeError):
            ca = None  # unreadable: make a new one
    if ca is None:
        ca = trustme.CA(organization_name="replicate local server")
        _write_private(ca_key, ca.private_key_pem.bytes())
        ca_cert.write_bytes(ca.cert_pem.bytes())
    names = list(dict.fromkeys([*LOOPBACK_NAMES, *(h.strip("[]") for h in hosts if h)]))
    leaf = ca.issue_cert(*names)
    cert_file = directory / "server.pem"
    _write_private(cert_file, leaf.private_key_and_cert_chain_pem.bytes())
    ca_file = directory / "ca.pem"
    bundle = ca.cert_pem.bytes()
    roots = _public_roots()
    if roots:
        bundle = bundle.rstrip(b"\n") + b"\n" + roots
    ca_file.write_bytes(bundle)
    return TLSFiles(directory=directory, ca_file=ca_file, cert_file=cert_file, temporary=temporary)
