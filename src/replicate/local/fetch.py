"""What the server fetches or calls back: file inputs and webhook receivers.

- A file input is a URL: this server's own file URLs, ``data:`` URIs or http(s) URLs.
  A path on the server's disk (``/etc/passwd``, ``../x``, ``file://...``) is refused.
- Remote inputs are streamed to disk with a size cap and an overall timeout.
- Nothing fetched or called back may target this server's own ``/_local`` controls: a
  URL whose host is one of the server's addresses (its bind address, a loopback alias,
  its public URL, this machine's name) on the server's port, with a path under
  ``/_local``, is refused (redirects are checked hop by hop).
"""

from __future__ import annotations

import base64
import ipaddress
import posixpath
import re
import socket
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .files import FileService

FILE_INPUT_RULE = "a file input must be an http(s) URL, a data: URI or a file URL of this server"
MAX_REDIRECTS = 5
FETCH_TIMEOUT = 60.0  # seconds to download one remote file input, in all


class FetchError(RuntimeError):
    """A file input could not be fetched (refused, too large, timed out, HTTP error)."""


@dataclass
class OwnAddress:
    """Where this server listens: host names/addresses and ports that reach it."""

    hosts: set[str] = field(default_factory=set)
    ports: set[int] = field(default_factory=set)

    def add_origin(self, origin: str) -> None:
        """Count ``origin`` (``scheme://host:port``, e.g. the public URL) as this server."""
        parts = urllib.parse.urlsplit(origin)
        if not parts.hostname:
            return
        self.hosts.add(parts.hostname.lower())
        try:
            port = parts.port
        except ValueError:
            return
        self.ports.add(port or (443 if parts.scheme == "https" else 80))

    def add_bind(self, host: str, port: int) -> None:
        """Count the socket's bind address as this server."""
        self.hosts.add(host.strip("[]").lower())
        self.ports.add(int(port))


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:  # legacy IPv4 spellings: 127.1, 2130706433, 0x7f.1
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _is_local_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return ip.is_loopback or ip.is_unspecified


def _machine_addresses() -> set[str]:
    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    out = set(names)
    for name in names:
        try:
            out.update(str(i[4][0]).lower() for i in socket.getaddrinfo(name, None))
        except OSError:
            pass
    return out


def _resolve(host: str) -> Iterable[str]:
    try:
        return {str(i[4][0]) for i in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return ()


def _is_self_host(host: str, own: OwnAddress) -> bool:
    host = host.strip("[]").lower().rstrip(".")
    if host in own.hosts or host == "localhost" or host.endswith(".localhost"):
        return True
    ip = _ip(host)
    if ip is not None:
        if _is_local_ip(ip):
            return True
        if any(_is_local_ip(b) for b in map(_ip, own.hosts) if b is not None):
            # bound to every interface: this machine's own addresses reach it too
            return str(ip) in _machine_addresses()
        return str(ip) in own.hosts
    if host in _machine_addresses():
        return True
    return any(_is_self_host(addr, own) for addr in _resolve(host) if _ip(addr) is not None)


def control_path(path: str) -> bool:
    """Whether a URL path (percent-encoded, maybe with dot segments) is under ``/_local``."""
    decoded = path
    for _ in range(3):  # %255F -> %5F -> _
        decoded = urllib.parse.unquote(decoded)
    decoded = re.sub(r"/+", "/", "/" + decoded.replace("\\", "/"))
    norm = posixpath.normpath(decoded).lower()
    return norm == "/_local" or norm.startswith("/_local/")


def targets_controls(url: str, own: OwnAddress) -> bool:
    """Whether fetching or posting to ``url`` would reach this server's ``/_local`` controls."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return False  # not a URL any client could fetch
    if not control_path(parts.path) or not parts.hostname:
        return False
    port = port or (443 if parts.scheme == "https" else 80)
    if own.ports and port not in own.ports:
        return False
    return _is_self_host(parts.hostname, own)


def outbound_problem(url: str, own: OwnAddress, what: str) -> str | None:
    """Why the server must not fetch/post ``url`` (None when it may)."""
    if targets_controls(url, own):
        return f"{what} must not point at this server's /_local test controls"
    return None


def file_input_problem(value: object, own: OwnAddress) -> str | None:
    """Why ``value`` is not an acceptable file input (None when it is)."""
    if not isinstance(value, str):
        return f"{FILE_INPUT_RULE}, not a JSON {type(value).__name__}"
    if value.startswith("data:"):
        return None if "," in value else "a data: URI needs a ',' before its payload"
    parts = urllib.parse.urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return outbound_problem(value, own, "a file input")
    if parts.scheme == "file":
        return f"{FILE_INPUT_RULE}; file:// URLs (server paths) are not accepted"
    return f"{FILE_INPUT_RULE}; {value[:80]!r} looks like a path on the server"


def download(
    url: str,
    target: Path,
    *,
    max_size: int,
    timeout: float,
    own: OwnAddress,
) -> Path:
    """Stream ``url`` into ``target`` (at most ``max_size`` bytes, ``timeout`` seconds in all).

    Redirects are followed by hand so every hop is checked. Raises FetchError.
    """
    import httpx

    deadline = time.monotonic() + timeout
    per_op = httpx.Timeout(min(timeout, 30.0))
    current = url
    with httpx.Client(timeout=per_op, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            problem = outbound_problem(current, own, "a file input")
            if problem is not None:
                raise FetchError(problem)
            try:
                with client.stream("GET", current) as resp:
                    if resp.is_redirect and "location" in resp.headers:
                        current = str(resp.url.join(resp.headers["location"]))
                        continue
                    if resp.status_code >= 400:
                        raise FetchError(
                            f"could not fetch input file {url}: HTTP {resp.status_code}"
                        )
                    declared = resp.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_size:
                        raise FetchError(_too_large(url, max_size))
                    size = 0
                    with open(target, "wb") as out:
                        for chunk in resp.iter_bytes(1024 * 1024):
                            size += len(chunk)
                            if size > max_size:
                                raise FetchError(_too_large(url, max_size))
                            if time.monotonic() > deadline:
                                raise FetchError(
                                    f"could not fetch input file {url}: timed out after {timeout:g} s"
                                )
                            out.write(chunk)
                    return target
            except FetchError:
                target.unlink(missing_ok=True)
                raise
            except httpx.HTTPError as exc:
                target.unlink(missing_ok=True)
                raise FetchError(f"could not fetch input file {url}: {exc}") from exc
    raise FetchError(f"could not fetch input file {url}: more than {MAX_REDIRECTS} redirects")


def _too_large(url: str, max_size: int) -> str:
    return f"input file {url} is larger than the limit of {max_size} bytes"


def input_file_path(
    files: FileService,
    value: str,
    directory: Path,
    *,
    owner: str | None = None,
    own: OwnAddress | None = None,
    timeout: float = FETCH_TIMEOUT,
) -> Path:
    """A file input (``data:`` URI, this server's file or delivery URL, other http(s) URL)
    as a file in ``directory``. ``owner``: the account whose uploads may be read.

    Raises ValueError for anything else (a path on the server is never read) and
    FetchError when a remote file cannot be fetched within the size cap and ``timeout``.
    """
    own = own or OwnAddress()
    problem = file_input_problem(value, own)
    if problem is not None:
        raise ValueError(problem)
    directory.mkdir(parents=True, exist_ok=True)
    if value.startswith("data:"):
        header, _, payload = value.partition(",")
        try:
            raw = (
                base64.b64decode(payload)
                if header.endswith(";base64")
                else urllib.parse.unquote_to_bytes(payload)
            )
        except ValueError as exc:
            raise ValueError(f"invalid data: URI in a file input: {exc}") from exc
        import mimetypes

        ext = mimetypes.guess_extension(header[5:].split(";")[0]) or ""
        target = directory / f"input{ext}"
        target.write_bytes(raw)
        return target
    row = files.resolve_input_url(value)
    if row is not None and (owner is None or row["kind"] != "upload" or row["owner"] == owner):
        return files.materialize(row, directory)
    name = Path(urllib.parse.unquote(urllib.parse.urlsplit(value).path)).name
    name = "".join(c for c in name if c.isalnum() or c in "._-")[:100].lstrip(".") or "input"
    return download(
        value, directory / name, max_size=files.max_upload_size, timeout=timeout, own=own
    )
