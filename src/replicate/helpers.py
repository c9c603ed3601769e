"""Files in and out: :class:`FileOutput`, input encoding and output transformation (docs/files.md).

* :class:`FileOutput` is a lazy handle on a URL (``https://...`` or an RFC 2397 ``data:`` URL) that a
  model returned. Its bytes are fetched with the download client on :meth:`~FileOutput.read`,
  iteration or :meth:`~FileOutput.save`; ``Authorization`` is sent only to the API origin.
* :func:`encode_json` / :func:`async_encode_json` turn a prediction ``input`` into JSON values,
  uploading files (once per object) or inlining them as base64 ``data:`` URLs.
* :func:`transform_output` turns URLs in an output into :class:`FileOutput` objects.
* :func:`base64_encode_file` encodes a file object as a ``data:`` URL, incrementally.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import logging
import mimetypes
import os
import re
import sys
import types
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import httpx

from .exceptions import DownloadError, wrap_transport_error


def __getattr__(name: str) -> Any:
    # ``HAS_NUMPY`` (1.0.x): whether numpy is installed, found without importing it.
    if name == "HAS_NUMPY":
        import importlib.util

        return importlib.util.find_spec("numpy") is not None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    from .client import Client
    from .file import FileEncodingStrategy

__all__ = [
    "FileOutput",
    "async_encode_json",
    "base64_encode_file",
    "encode_json",
    "transform_output",
]

logger = logging.getLogger("replicate")

#: Inputs larger than this, inlined as base64, log a warning (the API recommends uploads).
BASE64_WARN_BYTES = 256 * 1024
#: Bytes read from a file per step while base64-encoding (a multiple of 3: no padding mid-stream).
_B64_READ = 3 * 256 * 1024
_MAX_ERROR_BODY = 2000
#: At most this much of an error response body is read (it only feeds the message).
_MAX_ERROR_READ = 64 * 1024

# "https://" + a non-empty host, no whitespace anywhere.
_HTTPS_URL = re.compile(r"https://[^\s/?#]+[^\s]*")
# "data:" + an RFC 2397 header (no whitespace) + "," + anything.
_HTTP_URL = re.compile(r"http://[^\s/?#]+[^\s]*")
_DATA_URL = re.compile(r"data:[^\s,]*,.*", re.DOTALL)


def _default_client() -> Client:
    import replicate

    return replicate.default_client


def _safe_url(url: str | httpx.URL) -> str:
    """A URL for messages: no user info, query or fragment (signed URLs carry secrets there)."""
    try:
        u = httpx.URL(url) if isinstance(url, str) else url
    except Exception:
        return "<invalid URL>"
    port = f":{u.port}" if u.port is not None else ""
    return f"{u.scheme}://{u.host}{port}{u.path}"


# --------------------------------------------------------------------------------------------
# data: URLs (RFC 2397)
# --------------------------------------------------------------------------------------------


def _split_data_url(url: str) -> tuple[str, bool, str]:
    """``(media type, is base64, payload)`` of a ``data:`` URL."""
    comma = url.find(",")
    if not url[:5].lower() == "data:" or comma < 0:
        raise ValueError("Invalid data URL: expected 'data:[<mediatype>][;base64],<data>'")
    header = url[5:comma]
    params = header.split(";")
    is_b64 = len(params) > 1 and params[-1].strip().lower() == "base64"
    if is_b64:
        params = params[:-1]
    media_type = ";".join(params).strip() or "text/plain;charset=US-ASCII"
    return media_type, is_b64, url[comma + 1 :]


def _decode_data_url(url: str) -> bytes:
    """The bytes of a ``data:`` URL: base64 when flagged ``;base64``, else percent-decoded."""
    _, is_b64, payload = _split_data_url(url)
    raw = unquote_to_bytes(payload) if "%" in payload else payload.encode("utf-8")
    if not is_b64:
        return raw
    raw = re.sub(rb"\s+", b"", raw)
    raw = raw.rstrip(b"=")
    raw += b"=" * (-len(raw) % 4)
    try:
        if b"-" in raw or b"_" in raw:
            return base64.urlsafe_b64decode(raw)
        return base64.b64decode(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"Invalid base64 payload in data URL: {exc}") from exc


# --------------------------------------------------------------------------------------------
# FileOutput
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _removed_on_failure(target: Path) -> Iterator[None]:
    """Remove the partially written ``target`` when the block fails (any exception), then re-raise."""
    try:
        yield
    except BaseException:
        try:
            target.unlink()
        except OSError:
            pass
        raise


class FileOutput(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A file produced by a model: a lazy handle on its URL.

    ``read()`` returns the whole content, iterating yields byte chunks (streamed, bounded memory),
    ``save(path)`` streams it to disk; ``aread()``, ``async for`` and ``asave()`` are the async
    twins. ``data:`` URLs are decoded locally. Every read makes a fresh request. ``str()`` is the
    URL, so a ``FileOutput`` can be passed back as a model input.

    Download failures raise :class:`~replicate.exceptions.DownloadError` for HTTP statuses >= 400
    and the wrapped transport errors of :mod:`replicate.exceptions` otherwise.
    """

    url: str

    def __init__(self, url: str, client: Client | None = None) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be a string, not {type(url).__name__}")
        self.url = url
        self._client = client
        self._response: httpx.Response | None = None
        self._reader: Iterator[bytes] | None = None
        self._areader: AsyncIterator[bytes] | None = None
        self._pending = b""

    # ---------------------------------------------------------------- helpers

    @property
    def _api(self) -> Client:
        return self._client if self._client is not None else _default_client()

    def _is_data(self) -> bool:
        return self.url[:5].lower() == "data:"

    def _build_request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        return http.build_request("GET", self.url, headers=self._api._download_auth(self.url))

    @staticmethod
    def _error(response: httpx.Response, body: bytes) -> DownloadError:
        """The :class:`DownloadError` for an error response whose (bounded) ``body`` was read."""
        # A fresh, fully read response: callers of 1.0.x read ``err.response.text``.
        headers = response.headers.copy()
        for name in ("content-encoding", "content-length", "transfer-encoding"):
            headers.pop(name, None)
        copy = httpx.Response(
            response.status_code,
            headers=headers,
            content=body,
            request=response.request,
        )
        try:
            text = copy.text.strip()
        except Exception:
            text = ""
        status = response.status_code
        detail = f"Download of {_safe_url(response.request.url)} failed with HTTP {status}"
        if text:
            detail += f": {text[:_MAX_ERROR_BODY]}"
        return DownloadError(
            title="Download failed",
            status=status,
            detail=detail,
            body=text or None,
            headers=response.headers,
            request=response.request,
            response=copy,
        )

    @staticmethod
    def _error_body(response: httpx.Response) -> bytes:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) >= _MAX_ERROR_READ:
                break
        return bytes(body[:_MAX_ERROR_READ])

    @staticmethod
    async def _aerror_body(response: httpx.Response) -> bytes:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _MAX_ERROR_READ:
                break
        return bytes(body[:_MAX_ERROR_READ])

    # ---------------------------------------------------------------- sync

    def read(self, size: int | None = -1) -> bytes:
        """Download and return the whole content.

        With a ``size`` >= 0 it reads like a binary file instead: the next (at most) ``size``
        bytes of one streamed download, ``b""`` at the end (the next call starts a new download).
        This lets a ``FileOutput`` be passed as ``content=`` to httpx or to ``shutil.copyfileobj``.
        """
        if size is not None and size >= 0:
            return self._read_part(size)
        if self._is_data():
            return _decode_data_url(self.url)
        http = self._api._get_sync_client(download=True)
        try:
            response = http.send(self._build_request(http), stream=True)
            try:
                if response.status_code >= 400:
                    raise self._error(response, self._error_body(response))
                return response.read()
            finally:
                response.close()
        except httpx.RequestError as exc:
            raise wrap_transport_error(exc) from exc

    def _iter(self, chunk_size: int | None) -> Iterator[bytes]:
        if self._is_data():
            data = _decode_data_url(self.url)
            if chunk_size is None or len(data) <= chunk_size:
                if data:
                    yield data
                return
            view = memoryview(data)
            for start in range(0, len(data), chunk_size):
                yield bytes(view[start : start + chunk_size])
            return
        http = self._api._get_sync_client(download=True)
        try:
            response = http.send(self._build_request(http), stream=True)
            self._response = response
            try:
                if response.status_code >= 400:
                    raise self._error(response, self._error_body(response))
                yield from response.iter_bytes(chunk_size)
            finally:
                self._response = None
                response.close()
        except httpx.RequestError as exc:
            raise wrap_transport_error(exc) from exc

    def __iter__(self) -> Iterator[bytes]:
        """Stream the content as byte chunks (one request per iteration)."""
        return self._iter(None)

    def _read_part(self, size: int) -> bytes:
        if self._reader is None:
            self._reader, self._pending = self._iter(None), b""
        while self._buffer_short(size) and self._buffer(next(self._reader, None)):
            pass
        part = self._take(size)
        if not part:
            self._reader = None
        return part

    # The read-buffer decisions of _read_part / _aread_part (no I/O).

    def _buffer_short(self, size: int) -> bool:
        """Whether the buffer holds fewer than ``size`` bytes (at least one is always wanted)."""
        return len(self._pending) < max(size, 1)

    def _buffer(self, chunk: bytes | None) -> bool:
        """Append ``chunk`` to the buffer; ``False`` at the end of the content (``None``)."""
        if chunk is None:
            return False
        self._pending = self._pending + chunk if self._pending else chunk
        return True

    def _take(self, size: int) -> bytes:
        """Remove and return up to ``size`` bytes from the buffer."""
        part, self._pending = self._pending[:size], self._pending[size:]
        return part

    def save(self, path: str | os.PathLike[str], *, chunk_size: int | None = 65536) -> Path:
        """Stream the content to ``path`` and return it as a :class:`pathlib.Path`.

        A partially written file is removed when the download fails.
        """
        target = Path(path)
        with _removed_on_failure(target), open(target, "wb") as fh:
            for chunk in self._iter(chunk_size):
                fh.write(chunk)
        return target

    def close(self) -> None:
        """Release an open download response, if any."""
        reader, self._reader, self._pending = self._reader, None, b""
        if isinstance(reader, types.GeneratorType):
            reader.close()
        response, self._response = self._response, None
        if response is not None:
            response.close()

    # ---------------------------------------------------------------- async

    async def aread(self, size: int | None = -1) -> bytes:
        """Async twin of :meth:`read`."""
        if size is not None and size >= 0:
            return await self._aread_part(size)
        if self._is_data():
            return _decode_data_url(self.url)
        http = self._api._get_async_client(download=True)
        try:
            response = await http.send(self._build_request(http), stream=True)
            try:
                if response.status_code >= 400:
                    raise self._error(response, await self._aerror_body(response))
                return await response.aread()
            finally:
                await response.aclose()
        except httpx.RequestError as exc:
            raise wrap_transport_error(exc) from exc

    async def _aiter(self, chunk_size: int | None) -> AsyncIterator[bytes]:
        if self._is_data():
            for chunk in self._iter(chunk_size):
                yield chunk
            return
        http = self._api._get_async_client(download=True)
        try:
            response = await http.send(self._build_request(http), stream=True)
            self._response = response
            try:
                if response.status_code >= 400:
                    raise self._error(response, await self._aerror_body(response))
                async for chunk in response.aiter_bytes(chunk_size):
                    yield chunk
            finally:
                self._response = None
                await response.aclose()
        except httpx.RequestError as exc:
            raise wrap_transport_error(exc) from exc

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Async twin of :meth:`__iter__`."""
        return self._aiter(None)

    async def _aread_part(self, size: int) -> bytes:
        if self._areader is None:
            self._areader, self._pending = self._aiter(None), b""
        while self._buffer_short(size) and self._buffer(await anext(self._areader, None)):
            pass
        part = self._take(size)
        if not part:
            self._areader = None
        return part

    async def asave(self, path: str | os.PathLike[str], *, chunk_size: int | None = 65536) -> Path:
        """Async twin of :meth:`save`."""
        target = Path(path)
        fh = await asyncio.to_thread(open, target, "wb")
        with _removed_on_failure(target):
            try:
                async for chunk in self._aiter(chunk_size):
                    fh.write(chunk)
            finally:
                fh.close()
        return target

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        areader, self._areader, self._pending = self._areader, None, b""
        if isinstance(areader, types.AsyncGeneratorType):
            await areader.aclose()
        response, self._response = self._response, None
        if response is not None:
            await response.aclose()

    # ---------------------------------------------------------------- dunder

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        url = self.url
        if self._is_data() and len(url) > 60:
            url = url[:50] + "..."
        return f"{type(self).__name__}({url!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FileOutput):
            return self.url == other.url
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.url)

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.url = state["url"]
        self._client = None
        self._response = None
        self._reader = None
        self._areader = None
        self._pending = b""


# --------------------------------------------------------------------------------------------
# Output transformation
# --------------------------------------------------------------------------------------------


def _is_file_url(value: str, client: Client | None = None) -> bool:
    """Whether an output string is a file: one ``https://`` URL, a ``data:`` URL, or a plain
    ``http://`` URL served by the API origin itself (a local server)."""
    if value.startswith("https://"):
        return _HTTPS_URL.fullmatch(value) is not None
    if value[:5].lower() == "data:":
        return _DATA_URL.fullmatch(value) is not None
    if value.startswith("http://") and client is not None and _HTTP_URL.fullmatch(value):
        from ._http import origin_of

        try:
            return origin_of(value) == client._config.api_origin
        except Exception:
            return False
    return False


def file_name_from_url(url: str) -> str:
    """A safe local file name for a file output: the URL's basename (``output.<ext>`` for ``data:``)."""
    if url.startswith("data:"):
        import mimetypes

        mime = url[5:].split(",", 1)[0].split(";", 1)[0] or "application/octet-stream"
        return "output" + (mimetypes.guess_extension(mime) or "")
    from urllib.parse import unquote, urlsplit

    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = re.sub(r"[^\w.\-]+", "_", name).strip("._")
    return name or "output"


def transform_output(value: Any, client: Client | None = None) -> Any:
    """Replace single-URL strings in a model output with :class:`FileOutput` objects.

    Mappings become dicts and non-string sequences lists, transformed recursively. A string that
    is exactly one ``https://<host>...`` URL without whitespace, or a ``data:`` URL, becomes a
    ``FileOutput`` bound to ``client``; ``http:`` URLs stay strings, except those served by the
    client's own API origin (a local server on loopback); all other values are unchanged.
    """
    if isinstance(value, str):
        return FileOutput(value, client) if _is_file_url(value, client) else value
    if isinstance(value, list | tuple):
        return [transform_output(item, client) for item in value]
    if isinstance(value, Mapping):
        return {key: transform_output(item, client) for key, item in value.items()}
    return value


# --------------------------------------------------------------------------------------------
# Input encoding
# --------------------------------------------------------------------------------------------


def _guess_type(name: str | None) -> str:
    if name:
        guessed = mimetypes.guess_type(os.path.basename(str(name)))[0]
        if guessed:
            return guessed
    return "application/octet-stream"


def _file_name(file: Any) -> str | None:
    name = getattr(file, "name", None)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    return name if isinstance(name, str) and name else None


def base64_encode_file(file: Any) -> str:
    """Encode a file object as a ``data:<mime>;base64,<payload>`` URL.

    The file is rewound to its start when seekable and read in chunks; text-mode content is
    encoded as UTF-8. ``<mime>`` is guessed from ``file.name``, else ``application/octet-stream``.
    Inputs larger than 256 KiB log a warning (the API recommends uploading them instead).
    """
    if isinstance(file, bytes | bytearray | memoryview):
        data = bytes(file)
        mime = "application/octet-stream"
        parts = [base64.b64encode(data).decode("ascii")]
        total = len(data)
    else:
        try:
            if file.seekable():
                file.seek(0)
        except (AttributeError, OSError, ValueError):
            pass
        mime = _guess_type(_file_name(file))
        parts = []
        total = 0
        carry = b""
        while True:
            chunk = file.read(_B64_READ)
            if not chunk:
                break
            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8")
            total += len(chunk)
            if carry:
                chunk = carry + chunk
            cut = len(chunk) - len(chunk) % 3
            carry = chunk[cut:]
            if cut:
                parts.append(base64.b64encode(chunk[:cut]).decode("ascii"))
        if carry:
            parts.append(base64.b64encode(carry).decode("ascii"))
    if total > BASE64_WARN_BYTES:
        logger.warning(
            "Inlining a %d-byte file as base64; files larger than 256 KiB should be uploaded "
            "(file_encoding_strategy='url')",
            total,
        )
    return f"data:{mime};base64," + "".join(parts)


def _numpy_value(obj: Any) -> tuple[bool, Any]:
    np = sys.modules.get("numpy")
    if np is None:
        return False, None
    try:
        if isinstance(obj, np.integer):
            return True, int(obj)
        if isinstance(obj, np.floating):
            return True, float(obj)
        if isinstance(obj, np.bool_):
            return True, bool(obj)
        if isinstance(obj, np.ndarray):
            return True, obj.tolist()
    except AttributeError:  # pragma: no cover - exotic numpy builds
        return False, None
    return False, None


def _url_of_path_object(obj: Any) -> str | None:
    """The URL of a ``replicate.use.URLPath`` (checked before ``os.PathLike``: no download)."""
    use = sys.modules.get("replicate.use")
    if use is not None:
        url_path = getattr(use, "URLPath", None)
        if isinstance(url_path, type) and isinstance(obj, url_path):
            getter = getattr(use, "get_path_url", None)
            url = getter(obj) if callable(getter) else getattr(obj, "__url__", None)
            return str(url) if url is not None else None
    url = getattr(obj, "__url__", None)
    return url if isinstance(url, str) else None


def _upload_url(file: Any) -> str:
    urls = getattr(file, "urls", None)
    url = urls.get("get") if isinstance(urls, dict) else None
    if not isinstance(url, str) or not url:
        from .exceptions import APIResponseValidationError

        raise APIResponseValidationError(
            title="Invalid response body",
            detail=f"The uploaded file {getattr(file, 'id', None)} has no urls.get",
        )
    return url


def _is_file_object(obj: Any) -> bool:
    return isinstance(obj, io.IOBase) or (callable(getattr(obj, "read", None)))


class _Encoder:
    """One encoding pass: remembers uploads so each object is uploaded once."""

    def __init__(self, client: Client | None, strategy: FileEncodingStrategy | None) -> None:
        if strategy not in (None, "url", "base64"):
            raise ValueError(
                f"file_encoding_strategy must be 'url', 'base64' or None, not {strategy!r}"
            )
        self.client = client if client is not None else _default_client()
        self.base64 = strategy == "base64"
        self.memo: dict[Any, str] = {}

    # A leaf needing I/O is described as ("file", key, source, owned); the sync and async walkers
    # differ only in how they turn it into a string.
    def classify(self, obj: Any) -> tuple[str, Any]:
        """``("value", encoded)`` for plain values, ``("list"|"dict", items)``, or ``("file", ...)``."""
        if obj is None or isinstance(obj, str | int | float | bool):
            return "value", obj
        if isinstance(obj, Mapping):
            return "dict", obj
        if isinstance(obj, list | tuple | set | frozenset | types.GeneratorType):
            return "list", obj
        if isinstance(obj, FileOutput):
            return "value", obj.url
        url = _url_of_path_object(obj)
        if url is not None:
            return "value", url
        if isinstance(obj, bytes | bytearray | memoryview):
            return "file", (("bytes", id(obj)), obj)
        if isinstance(obj, os.PathLike):
            return "file", (("path", os.fspath(obj)), obj)
        if _is_file_object(obj):
            return "file", (("file", id(obj)), obj)
        found, value = _numpy_value(obj)
        if found:
            return "value", value
        return "value", obj

    def encode_file_sync(self, source: Any) -> str:
        if isinstance(source, os.PathLike):
            with open(source, "rb") as fh:
                return self.encode_file_sync(fh)
        if self.base64:
            return base64_encode_file(source)
        return _upload_url(self.client.files.create(source))

    async def encode_file_async(self, source: Any) -> str:
        if self.base64:
            if isinstance(source, os.PathLike):
                return await asyncio.to_thread(self.encode_file_sync, source)
            if isinstance(source, bytes | bytearray | memoryview):
                return base64_encode_file(source)
            return await asyncio.to_thread(base64_encode_file, source)
        if isinstance(source, os.PathLike):
            fh = await asyncio.to_thread(open, source, "rb")
            try:
                return await self.encode_file_async(fh)
            finally:
                fh.close()
        return _upload_url(await self.client.files.async_create(source))

    def encode(self, obj: Any) -> Any:
        kind, value = self.classify(obj)
        if kind == "value":
            return value
        if kind == "dict":
            return {key: self.encode(item) for key, item in value.items()}
        if kind == "list":
            return [self.encode(item) for item in value]
        key, source = value
        url = self.memo.get(key)
        if url is None:
            url = self.memo[key] = self.encode_file_sync(source)
        return url

    async def aencode(self, obj: Any) -> Any:
        kind, value = self.classify(obj)
        if kind == "value":
            return value
        if kind == "dict":
            return {key: await self.aencode(item) for key, item in value.items()}
        if kind == "list":
            return [await self.aencode(item) for item in value]
        key, source = value
        url = self.memo.get(key)
        if url is None:
            url = self.memo[key] = await self.encode_file_async(source)
        return url


def encode_json(
    obj: Any,
    client: Client | None = None,
    file_encoding_strategy: FileEncodingStrategy | None = None,
) -> Any:
    """Encode a prediction input as JSON values (docs/files.md, "Inputs").

    Mappings, sequences, sets and generators are encoded recursively (generators are consumed).
    Files (file objects, ``os.PathLike`` paths, ``bytes``-likes) are uploaded with
    ``client.files.create`` and replaced with their URL, or inlined as ``data:`` URLs with
    ``file_encoding_strategy="base64"``; the same object is uploaded once. ``FileOutput`` and
    ``URLPath`` become their URL, numpy scalars and arrays plain numbers and lists. Strings are
    never treated as paths.
    """
    return _Encoder(client, file_encoding_strategy).encode(obj)


async def async_encode_json(
    obj: Any,
    client: Client | None = None,
    file_encoding_strategy: FileEncodingStrategy | None = None,
) -> Any:
    """Async twin of :func:`encode_json` (uploads with ``files.async_create``)."""
    return await _Encoder(client, file_encoding_strategy).aencode(obj)
