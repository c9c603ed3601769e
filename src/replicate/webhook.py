"""Webhook signing secrets and signature validation (docs/webhooks.md).

Replicate signs each webhook request with HMAC-SHA256 over ``"{webhook-id}.{webhook-timestamp}."``
followed by the raw body, keyed with the base64-decoded part of the account's signing secret
(``whsec_...``). :meth:`Webhooks.validate` checks the signature and, by default, that the timestamp
is within 5 minutes of the current time (replay protection).

Nothing in this module puts a secret, a signature or a header value into an exception message, a
log record or a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from ._http import Operation, json_object_of
from .resource import Namespace, Resource

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._http import RequestOptions

__all__ = [
    "DEFAULT_TOLERANCE",
    "InvalidSecretKeyError",
    "InvalidSignatureError",
    "InvalidTimestampError",
    "MissingWebhookBodyError",
    "MissingWebhookHeaderError",
    "WebhookSigningSecret",
    "WebhookValidationError",
    "Webhooks",
]

#: Default allowed distance between a webhook's timestamp and the current time, in seconds.
DEFAULT_TOLERANCE = 300

_SECRET_PREFIX = "whsec_"
_TIMESTAMP_RE = re.compile(r"[0-9]+")
_SECRET_PATH = "/v1/webhooks/default/secret"


def _now() -> float:
    """The current POSIX time; patched by tests to pin the clock."""
    return time.time()


# ------------------------------------------------------------------------------------------
# Exceptions
# ------------------------------------------------------------------------------------------


class WebhookValidationError(ValueError):
    """Base class of the errors raised when a webhook request fails validation."""


class MissingWebhookHeaderError(WebhookValidationError):
    """The ``webhook-id``, ``webhook-timestamp`` or ``webhook-signature`` header is missing."""


class MissingWebhookBodyError(WebhookValidationError):
    """The webhook request has no body."""


class InvalidTimestampError(WebhookValidationError):
    """The timestamp is not an integer, or is outside the allowed tolerance."""


class InvalidSignatureError(WebhookValidationError):
    """No signature in the ``webhook-signature`` header matches (or none is well-formed)."""


class InvalidSecretKeyError(WebhookValidationError):
    """The signing secret is not ``whsec_`` followed by non-empty base64."""


# ------------------------------------------------------------------------------------------
# The secret resource
# ------------------------------------------------------------------------------------------


def _mask(key: Any) -> str:
    if isinstance(key, str) and key.startswith(_SECRET_PREFIX):
        return _SECRET_PREFIX + "***"
    return "***"


class WebhookSigningSecret(Resource):
    """The secret used to sign webhook requests (``GET /v1/webhooks/default/secret``).

    ``key`` is the whole secret, ``whsec_`` followed by base64. ``repr()`` and ``str()`` mask it.
    """

    key: str | None = None

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name == "key" and value is not None:
                yield name, _mask(value)
            else:
                yield name, value


# ------------------------------------------------------------------------------------------
# Validation helpers (pure)
# ------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value)
    return str(value)


def _normalize_headers(headers: Any) -> dict[str, str]:
    """Lower-cased header names -> values, from any mapping (or list of pairs).

    Repeated headers are joined with a space (the separator of ``webhook-signature`` entries).

    WSGI/Django ``META``-style names (``HTTP_WEBHOOK_ID``) become ``webhook-id``.
    """
    if headers is None:
        return {}
    items: Iterable[Any]
    if hasattr(headers, "multi_items"):  # httpx.Headers: keep repeated headers apart
        items = headers.multi_items()
    elif hasattr(headers, "items"):
        items = headers.items()
    elif isinstance(headers, (list, tuple)):
        items = headers
    else:
        raise TypeError(
            f"headers must be a mapping of header names to values, not {type(headers).__name__}"
        )
    result: dict[str, str] = {}
    for name, value in items:
        key = _text(name).strip().lower()
        if key.startswith("http_"):
            key = key[len("http_") :].replace("_", "-")
        text = _text(value)
        # A repeated header (e.g. two webhook-signature lines) is joined with a space.
        result[key] = f"{result[key]} {text}" if key in result else text
    return result


def _headers_of_request(request: Any) -> dict[str, str]:
    """Headers of an httpx/Starlette/Flask/Django/aiohttp/... request, case-insensitively."""
    merged: dict[str, str] = {}
    meta = getattr(request, "META", None)  # Django / WSGI environ-style
    if isinstance(meta, Mapping):
        merged.update(
            _normalize_headers(
                {k: v for k, v in meta.items() if str(k).upper().startswith("HTTP_")}
            )
        )
    headers = getattr(request, "headers", None)
    if headers is not None and not callable(headers):
        merged.update(_normalize_headers(headers))
    return merged


class _BodyNotRead(Exception):
    """The request object has a body that cannot be read synchronously (it was not read yet)."""


def _body_of_request(request: Any) -> bytes | str | None:
    """The raw body of a request object, duck-typed.

    Tries, in order: ``httpx.Request.content`` (read if needed), a ``content`` attribute, the
    cached ``_body`` of Starlette/FastAPI/Django requests, a ``body`` attribute (Django, Tornado,
    ``requests.PreparedRequest``, simple objects), Flask/Werkzeug ``get_data()``, and aiohttp's
    cached ``_read_bytes``.
    """
    if isinstance(request, httpx.Request):
        try:
            return request.content
        except httpx.RequestNotRead:
            try:
                return request.read()
            except Exception as exc:  # async-only stream
                raise _BodyNotRead("await request.aread()") from exc

    for attribute in ("content", "_body", "body"):
        value = getattr(request, attribute, None)
        if isinstance(value, (bytes, bytearray, memoryview, str)):
            return value if isinstance(value, str) else bytes(value)
    get_data = getattr(request, "get_data", None)
    if callable(get_data):
        data = get_data()
        if isinstance(data, (bytes, bytearray, str)):
            return data if isinstance(data, str) else bytes(data)
    read_bytes = getattr(request, "_read_bytes", None)
    if isinstance(read_bytes, (bytes, bytearray)):
        return bytes(read_bytes)
    if callable(getattr(request, "body", None)):  # e.g. Starlette: `await request.body()`
        raise _BodyNotRead("await request.body()")
    return None


def _body_bytes(body: Any) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise TypeError(f"body must be the raw request body as str or bytes, not {type(body).__name__}")


def _secret_key(secret: Any) -> str:
    if isinstance(secret, str):
        return secret
    if isinstance(secret, (bytes, bytearray)):
        try:
            return bytes(secret).decode("ascii")
        except UnicodeDecodeError:
            raise InvalidSecretKeyError("Invalid secret key format") from None
    key = getattr(secret, "key", None)
    if isinstance(key, str):
        return key
    raise InvalidSecretKeyError("Invalid secret key format")


def _strict_b64decode(value: str) -> bytes | None:
    """Decode strict base64 (standard alphabet, correct padding), or ``None``."""
    if not value:
        return None
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def _check_tolerance(tolerance: Any) -> float:
    if tolerance is None:
        return DEFAULT_TOLERANCE
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
        raise TypeError(f"tolerance must be a number of seconds, not {type(tolerance).__name__}")
    if math.isnan(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a number of seconds >= 0, not {tolerance!r}")
    return tolerance


def _validate(
    request: Any = None,
    headers: Any = None,
    body: Any = None,
    secret: Any = None,
    tolerance: float | None = None,
) -> bool:
    # 1. secret present
    if not secret:
        raise ValueError("Missing webhook signing secret")
    # 2. request xor headers/body
    if request is not None and (headers is not None or body is not None):
        raise ValueError("Only one of request or headers/body can be provided")
    allowed = _check_tolerance(tolerance)

    # 3. headers
    body_hint = ""
    if request is not None:
        header_map = _headers_of_request(request)
        try:
            body = _body_of_request(request)
        except _BodyNotRead as exc:
            body, body_hint = None, str(exc)
    else:
        header_map = _normalize_headers(headers)
    if not header_map:
        raise MissingWebhookHeaderError("Missing webhook headers")

    # 4. required headers and body
    webhook_id = header_map.get("webhook-id", "").strip()
    timestamp = header_map.get("webhook-timestamp", "").strip()
    signatures = header_map.get("webhook-signature", "").strip()
    if not webhook_id:
        raise MissingWebhookHeaderError("Missing webhook id")
    if not timestamp:
        raise MissingWebhookHeaderError("Missing webhook timestamp")
    if not signatures:
        raise MissingWebhookHeaderError("Missing webhook signature")
    if body is None or len(body) == 0:
        if body_hint:
            raise MissingWebhookBodyError(
                f"Missing webhook body: read it first ({body_hint}) or pass headers= and body="
            )
        raise MissingWebhookBodyError("Missing webhook body")
    payload = _body_bytes(body)

    # 5. timestamp format
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise InvalidTimestampError("Invalid webhook timestamp")

    # 6. secret key
    key = _secret_key(secret)
    if key.startswith(_SECRET_PREFIX):
        key = key[len(_SECRET_PREFIX) :]
    key_bytes = _strict_b64decode(key)
    if not key_bytes:
        raise InvalidSecretKeyError("Invalid secret key format")

    # 7. expected signature
    signed = f"{webhook_id}.{timestamp}.".encode() + payload
    expected = hmac.new(key_bytes, signed, hashlib.sha256).digest()

    # 8. with an explicit tolerance, the age first (the 1.0.x order)
    if tolerance is not None:
        _check_age(timestamp, allowed)

    # 9. compare with every v1 entry; one that is not strict base64 simply cannot match
    has_v1 = False
    matched = False
    for entry in signatures.split():
        version, comma, encoded = entry.partition(",")
        if not comma or version != "v1":
            continue
        has_v1 = True
        candidate = _strict_b64decode(encoded)
        if candidate is not None and hmac.compare_digest(candidate, expected):
            matched = True
            break

    # 10. outcome of the signature check (messages never echo header values)
    if not has_v1:
        raise InvalidSignatureError("Invalid signature format")
    if not matched:
        raise InvalidSignatureError("Webhook signature is invalid")

    # 11. with the default tolerance, the age only after a signature matched: a bad secret or
    # signature on an old payload keeps the error 1.0.x gave; a stale message is refused anyway.
    if tolerance is None:
        _check_age(timestamp, allowed)
    return True


def _check_age(timestamp: str, allowed: float) -> None:
    """Replay protection: the timestamp must be within ``allowed`` seconds of now."""
    try:
        outside = abs(_now() - int(timestamp)) > allowed
    except OverflowError:
        outside = True
    if outside:
        raise InvalidTimestampError(
            f"Webhook timestamp is outside the allowed tolerance of {allowed} seconds"
        )


# ------------------------------------------------------------------------------------------
# The namespace
# ------------------------------------------------------------------------------------------


class Webhooks(Namespace):
    """The ``webhooks`` namespace: the default signing secret and signature validation."""

    class Default(Namespace):
        """The account's default webhook settings."""

        def _operation(self, options: Mapping[str, Any]) -> Operation[WebhookSigningSecret]:
            client = self._client

            def parse(response: httpx.Response) -> WebhookSigningSecret:
                return WebhookSigningSecret._from_api(json_object_of(response), client)

            return Operation("GET", _SECRET_PATH, parse=parse).with_options(options)

        def secret(self, **options: Unpack[RequestOptions]) -> WebhookSigningSecret:
            """Get the default webhook signing secret (``GET /v1/webhooks/default/secret``)."""
            return self._call(self._operation(options))

        async def async_secret(self, **options: Unpack[RequestOptions]) -> WebhookSigningSecret:
            """Async twin of :meth:`secret`."""
            return await self._acall(self._operation(options))

    @property
    def default(self) -> Webhooks.Default:
        """Operations on the account's default webhook settings (``default.secret()``)."""
        return Webhooks.Default(self._client)

    @staticmethod
    def validate(
        request: Any = None,
        headers: Mapping[str, str] | None = None,
        body: str | bytes | None = None,
        secret: WebhookSigningSecret | str | None = None,
        tolerance: float | None = None,
    ) -> bool:
        """Validate a webhook request's signature and timestamp; return ``True`` or raise.

        Args:
            request: the incoming request: an ``httpx.Request`` or any object with a ``headers``
                mapping and the raw body as ``content``/``body`` (bytes or str). Starlette/FastAPI
                requests must have been read (``await request.body()``); Flask (``get_data()``)
                and Django (``body``, ``headers``/``META``) requests work as they are.
            headers: the request headers (any case), instead of ``request``.
            body: the raw request body, instead of ``request``. ``bytes`` are used exactly as
                received; ``str`` is encoded as UTF-8. Do not re-serialise parsed JSON.
            secret: the signing secret, a :class:`WebhookSigningSecret` or its ``whsec_...`` key.
            tolerance: allowed age (and clock skew) of the timestamp in seconds; ``None`` means
                300. ``math.inf`` disables the check (not recommended). When given, the age is
                checked before the signature (the 1.0.x order); with the default, after it.

        Raises:
            ValueError: no secret, or both ``request`` and ``headers``/``body`` given.
            MissingWebhookHeaderError: no headers, or no ``webhook-id``/``-timestamp``/``-signature``.
            MissingWebhookBodyError: the body is empty.
            InvalidTimestampError: the timestamp is malformed or outside the tolerance.
            InvalidSecretKeyError: the secret is not ``whsec_`` + base64.
            InvalidSignatureError: no ``v1,`` entry (``Invalid signature format``) or none
                matches (``Webhook signature is invalid``).
        """
        return _validate(request, headers, body, secret, tolerance)
