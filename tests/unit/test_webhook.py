"""Tests of webhook signature validation and the webhooks namespace (docs/webhooks.md)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import pickle
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import replicate
import replicate.webhook as webhook_module
from replicate.client import Client
from replicate.webhook import (
    InvalidSecretKeyError,
    InvalidSignatureError,
    InvalidTimestampError,
    MissingWebhookBodyError,
    MissingWebhookHeaderError,
    Webhooks,
    WebhookSigningSecret,
    WebhookValidationError,
)

# The test vector of docs/webhooks.md, "Test vector".
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRET_BODY = SECRET.removeprefix("whsec_")
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = '{"test": 2432232314}'
SIGNATURE = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
HEADERS = {
    "webhook-id": MSG_ID,
    "webhook-timestamp": str(TIMESTAMP),
    "webhook-signature": f"v1,{SIGNATURE}",
}
# Values that must never appear in a message or repr.
SENSITIVE = (SECRET_BODY, SIGNATURE, SECRET_BODY[:12], SIGNATURE[:12])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Pin the validation clock at the vector's timestamp; tests may move it via clock[0]."""
    now = [float(TIMESTAMP)]
    monkeypatch.setattr(webhook_module, "_now", lambda: now[0])
    yield now


def sign(msg_id: str, timestamp: int | str, body: bytes, secret: str = SECRET) -> str:
    """An independent signer: base64(HMAC-SHA256(key, "id.ts." + body))."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def headers_with(**changes: str | None) -> dict[str, str]:
    result = dict(HEADERS)
    for name, value in changes.items():
        key = name.replace("_", "-")
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def assert_no_secrets(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), repr(exc.args)):
        for secret in SENSITIVE:
            assert secret not in text


# ------------------------------------------------------------------------------------------
# The test vector
# ------------------------------------------------------------------------------------------


def test_vector_with_clock_at_timestamp(clock: list[float]) -> None:
    assert Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET) is True


def test_vector_with_secret_object_and_bytes_body(clock: list[float]) -> None:
    secret = WebhookSigningSecret(key=SECRET)
    assert Webhooks.validate(headers=HEADERS, body=BODY.encode(), secret=secret) is True


def test_vector_with_infinite_tolerance_and_real_clock() -> None:
    assert Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET, tolerance=math.inf)


def test_vector_with_default_tolerance_and_real_clock_is_stale() -> None:
    with pytest.raises(InvalidTimestampError) as info:
        Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET)
    assert str(info.value) == "Webhook timestamp is outside the allowed tolerance of 300 seconds"


def test_secret_without_prefix(clock: list[float]) -> None:
    assert Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET_BODY)


@pytest.mark.parametrize("offset", [-3599, 3599, -3600, 3600, 0])
def test_within_explicit_tolerance(clock: list[float], offset: int) -> None:
    clock[0] = TIMESTAMP + offset
    assert Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET, tolerance=3600)


@pytest.mark.parametrize("offset", [-3601, 3601])
def test_outside_explicit_tolerance(clock: list[float], offset: int) -> None:
    clock[0] = TIMESTAMP + offset
    with pytest.raises(InvalidTimestampError, match="tolerance of 3600 seconds"):
        Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET, tolerance=3600)


@pytest.mark.parametrize(("offset", "ok"), [(300, True), (-300, True), (301, False), (-301, False)])
def test_default_tolerance_is_300(clock: list[float], offset: int, ok: bool) -> None:
    clock[0] = TIMESTAMP + offset
    if ok:
        assert Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET, tolerance=None)
    else:
        with pytest.raises(InvalidTimestampError):
            Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET, tolerance=None)


@pytest.mark.parametrize("index", range(len(BODY)))
def test_any_changed_body_byte_is_rejected(clock: list[float], index: int) -> None:
    data = bytearray(BODY.encode())
    data[index] ^= 0x01
    with pytest.raises(InvalidSignatureError) as info:
        Webhooks.validate(headers=HEADERS, body=bytes(data), secret=SECRET)
    assert str(info.value) == "Webhook signature is invalid"


def test_v2_prefix_is_rejected(clock: list[float]) -> None:
    headers = headers_with(webhook_signature=f"v2,{SIGNATURE}")
    with pytest.raises(InvalidSignatureError) as info:
        Webhooks.validate(headers=headers, body=BODY, secret=SECRET)
    assert str(info.value) == "Invalid signature format"


@pytest.mark.parametrize("field", ["webhook-id", "webhook-timestamp"])
def test_changed_signed_header_is_rejected(clock: list[float], field: str) -> None:
    headers = dict(HEADERS)
    headers[field] = headers[field][:-1] + ("1" if headers[field][-1] != "1" else "2")
    with pytest.raises(InvalidSignatureError, match="Webhook signature is invalid"):
        Webhooks.validate(headers=headers, body=BODY, secret=SECRET, tolerance=math.inf)


def test_wrong_secret_is_rejected(clock: list[float]) -> None:
    other = "whsec_" + base64.b64encode(b"another secret key of 24b").decode()
    with pytest.raises(InvalidSignatureError, match="Webhook signature is invalid"):
        Webhooks.validate(headers=HEADERS, body=BODY, secret=other)


# ------------------------------------------------------------------------------------------
# Signature header parsing
# ------------------------------------------------------------------------------------------

WRONG = base64.b64encode(b"\x00" * 32).decode()


@pytest.mark.parametrize(
    "header",
    [
        f"v1,{WRONG} v1,{SIGNATURE}",
        f"v1,{SIGNATURE} v1,{WRONG}",
        f"v2,{SIGNATURE} v1,{SIGNATURE}",
        f"v1a,{WRONG}  v1,{SIGNATURE}",
        f"v1 v1,{SIGNATURE}",  # no comma
        f"v1,not*base64 v1,{SIGNATURE}",  # non-base64 characters
        f"v1,{SIGNATURE[:-1]} v1,{SIGNATURE}",  # missing padding
        f"v1,{SIGNATURE}garbage v1,{SIGNATURE}",
        f",{SIGNATURE} v1,{SIGNATURE}",  # empty version
        f"v1, v1,{SIGNATURE}",  # empty signature
        f"  v1,{SIGNATURE}  ",
    ],
)
def test_one_matching_entry_among_several(clock: list[float], header: str) -> None:
    headers = headers_with(webhook_signature=header)
    assert Webhooks.validate(headers=headers, body=BODY, secret=SECRET)


@pytest.mark.parametrize(
    "header",
    [
        "v1",
        "garbage",
        f"v2,{SIGNATURE}",
        f"V1,{SIGNATURE}",
        f"v1;{SIGNATURE}",
        ",",
    ],
)
def test_no_v1_entry_is_an_invalid_format(clock: list[float], header: str) -> None:
    headers = headers_with(webhook_signature=header)
    with pytest.raises(InvalidSignatureError) as info:
        Webhooks.validate(headers=headers, body=BODY, secret=SECRET)
    assert str(info.value) == "Invalid signature format"  # never the header value (1.0.x echoed it)
    assert_no_secrets(info.value)


@pytest.mark.parametrize(
    "header",
    [
        "v1,invalid_signature",  # the 1.0.x test's case and message
        f"v1,{SIGNATURE[:-1]}",  # truncated
        f"v1,{SIGNATURE}AAAA",  # extended (1.0.x accepted it)
        f"v1,{SIGNATURE.replace('+', '-').replace('/', '_')}",  # url-safe alphabet
        "v1,",
        f"v2,{SIGNATURE} v1,{SIGNATURE}*",
    ],
)
def test_v1_entries_that_cannot_match_are_an_invalid_signature(
    clock: list[float], header: str
) -> None:
    headers = headers_with(webhook_signature=header)
    with pytest.raises(InvalidSignatureError) as info:
        Webhooks.validate(headers=headers, body=BODY, secret=SECRET)
    assert str(info.value) == "Webhook signature is invalid"
    assert_no_secrets(info.value)


def test_well_formed_but_no_match(clock: list[float]) -> None:
    headers = headers_with(webhook_signature=f"v1,{WRONG} v1,{base64.b64encode(b'x').decode()}")
    with pytest.raises(InvalidSignatureError) as info:
        Webhooks.validate(headers=headers, body=BODY, secret=SECRET)
    assert str(info.value) == "Webhook signature is invalid"


def test_signature_with_trailing_character_is_not_strict_base64(clock: list[float]) -> None:
    headers = headers_with(webhook_signature=f"v1,{SIGNATURE}x")
    with pytest.raises(InvalidSignatureError, match="Webhook signature is invalid"):
        Webhooks.validate(headers=headers, body=BODY, secret=SECRET)


@pytest.mark.parametrize("signature", ["v1,invalid_signature", "garbage", f"v1,{SIGNATURE}"])
def test_explicit_tolerance_checks_the_timestamp_before_the_signature(
    clock: list[float], signature: str
) -> None:
    """The 1.0.x order: with ``tolerance=`` a stale message fails on its age, whatever its
    signature (a forged one included)."""
    clock[0] = TIMESTAMP + 11
    headers = headers_with(webhook_signature=signature)
    with pytest.raises(InvalidTimestampError) as info:
        Webhooks.validate(headers=headers, body=BODY, secret=SECRET, tolerance=10)
    assert str(info.value) == "Webhook timestamp is outside the allowed tolerance of 10 seconds"


def test_default_tolerance_checks_the_timestamp_after_the_signature(clock: list[float]) -> None:
    """Without ``tolerance=`` a bad signature on an old payload keeps the 1.0.x signature
    error; a stale message with a valid signature is still refused (on its age)."""
    clock[0] = TIMESTAMP + 10_000
    forged = headers_with(webhook_signature="v1,invalid_signature")
    with pytest.raises(InvalidSignatureError, match="Webhook signature is invalid"):
        Webhooks.validate(headers=forged, body=BODY, secret=SECRET)
    with pytest.raises(InvalidTimestampError, match="tolerance of 300 seconds"):
        Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET)


@pytest.mark.parametrize("tolerance", [None, 10])
@pytest.mark.parametrize("age", [0, 10_000])
def test_forged_or_stale_messages_are_refused_in_either_order(
    clock: list[float], tolerance: float | None, age: int
) -> None:
    clock[0] = TIMESTAMP + age
    for header in ("v1,invalid_signature", f"v1,{SIGNATURE[:-4]}", f"v1,{SIGNATURE}AAAA"):
        with pytest.raises((InvalidSignatureError, InvalidTimestampError)):
            Webhooks.validate(
                headers=headers_with(webhook_signature=header),
                body=BODY,
                secret=SECRET,
                tolerance=tolerance,
            )
    if age:
        with pytest.raises(InvalidTimestampError):
            Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET, tolerance=tolerance)
    else:
        assert Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET, tolerance=tolerance)


# ------------------------------------------------------------------------------------------
# Secrets
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", b""])
def test_missing_secret(secret: Any) -> None:
    with pytest.raises(ValueError) as info:
        Webhooks.validate(headers=HEADERS, body=BODY, secret=secret)
    assert str(info.value) == "Missing webhook signing secret"
    assert not isinstance(info.value, WebhookValidationError)


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  # wrong length / padding
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw!",
        "whsec_MfKQ9r8GKYqrTwjUPD8I LPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_",  # url-safe alphabet
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwé",
        "whsec_====",
        WebhookSigningSecret(key="whsec_@@@@MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        WebhookSigningSecret(),
    ],
)
def test_invalid_secret_key(clock: list[float], secret: Any) -> None:
    with pytest.raises(InvalidSecretKeyError) as info:
        Webhooks.validate(headers=HEADERS, body=BODY, secret=secret)
    assert str(info.value) == "Invalid secret key format"
    assert_no_secrets(info.value)
    assert "MfKQ" not in str(info.value)


def test_secret_repr_and_str_are_masked() -> None:
    secret = WebhookSigningSecret(key=SECRET)
    for text in (repr(secret), str(secret), f"{secret!r}", repr([secret])):
        assert SECRET_BODY not in text
        assert "MfKQ" not in text
    assert repr(secret) == "WebhookSigningSecret(key='whsec_***')"
    assert secret.key == SECRET
    assert secret.dict() == {"key": SECRET}
    assert repr(WebhookSigningSecret(key="plain")) == "WebhookSigningSecret(key='***')"
    assert repr(WebhookSigningSecret()) == "WebhookSigningSecret(key=None)"


def test_secret_resource_is_tolerant_and_picklable() -> None:
    secret = WebhookSigningSecret._from_api({"key": SECRET, "created_at": "2024-01-01"})
    assert secret.created_at == "2024-01-01"  # type: ignore[attr-defined]
    assert "2024-01-01" in repr(secret)
    assert pickle.loads(pickle.dumps(secret)) == secret


# ------------------------------------------------------------------------------------------
# Order of checks and missing pieces
# ------------------------------------------------------------------------------------------


def test_request_together_with_headers_or_body() -> None:
    request = httpx.Request("POST", "https://example.com/hook", headers=HEADERS, content=BODY)
    for kwargs in ({"headers": HEADERS}, {"body": BODY}, {"headers": HEADERS, "body": BODY}):
        with pytest.raises(ValueError) as info:
            Webhooks.validate(request=request, secret=SECRET, **kwargs)
        assert str(info.value) == "Only one of request or headers/body can be provided"


def test_missing_secret_checked_before_arguments() -> None:
    request = httpx.Request("POST", "https://example.com/hook")
    with pytest.raises(ValueError, match="Missing webhook signing secret"):
        Webhooks.validate(request=request, headers=HEADERS, secret=None)


@pytest.mark.parametrize("headers", [None, {}, []])
def test_missing_headers(headers: Any) -> None:
    with pytest.raises(MissingWebhookHeaderError) as info:
        Webhooks.validate(headers=headers, body=BODY, secret=SECRET)
    assert str(info.value) == "Missing webhook headers"


def test_request_without_headers() -> None:
    with pytest.raises(MissingWebhookHeaderError, match="Missing webhook headers"):
        Webhooks.validate(request=object(), secret=SECRET)


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ({"webhook_id": None}, "Missing webhook id"),
        ({"webhook_timestamp": None}, "Missing webhook timestamp"),
        ({"webhook_signature": None}, "Missing webhook signature"),
        ({"webhook_id": ""}, "Missing webhook id"),
        ({"webhook_signature": "  "}, "Missing webhook signature"),
        ({"webhook_id": None, "webhook_timestamp": None}, "Missing webhook id"),
        ({"webhook_timestamp": None, "webhook_signature": None}, "Missing webhook timestamp"),
    ],
)
def test_missing_header(missing: dict[str, str | None], message: str) -> None:
    with pytest.raises(MissingWebhookHeaderError) as info:
        Webhooks.validate(headers=headers_with(**missing), body="", secret="whsec_bad!")
    assert str(info.value) == message


@pytest.mark.parametrize("body", [None, "", b""])
def test_missing_body(body: Any) -> None:
    with pytest.raises(MissingWebhookBodyError) as info:
        Webhooks.validate(
            headers=headers_with(webhook_timestamp="x"), body=body, secret="whsec_bad!"
        )
    assert str(info.value) == "Missing webhook body"


@pytest.mark.parametrize("timestamp", ["abc", "1614265330.5", "-1614265330", "0x10", "١٢٣", "1e9"])
def test_invalid_timestamp_format(timestamp: str) -> None:
    with pytest.raises(InvalidTimestampError) as info:
        Webhooks.validate(
            headers=headers_with(webhook_timestamp=timestamp), body=BODY, secret="whsec_bad!"
        )
    assert str(info.value) == "Invalid webhook timestamp"


def test_secret_checked_before_signature() -> None:
    headers = headers_with(webhook_signature="garbage")
    with pytest.raises(InvalidSecretKeyError):
        Webhooks.validate(headers=headers, body=BODY, secret="whsec_!!")


def test_signature_checked_before_age() -> None:
    """A stale message with a bad signature reports the signature (as 1.0.x did)."""
    headers = headers_with(webhook_signature=f"v1,{WRONG}")
    with pytest.raises(InvalidSignatureError):
        Webhooks.validate(headers=headers, body=BODY, secret=SECRET)


def test_huge_timestamp_is_outside_tolerance(clock: list[float]) -> None:
    ts = "9" * 400
    headers = headers_with(
        webhook_timestamp=ts, webhook_signature=f"v1,{sign(MSG_ID, ts, BODY.encode())}"
    )
    with pytest.raises(InvalidTimestampError, match="tolerance"):
        Webhooks.validate(headers=headers, body=BODY, secret=SECRET)


@pytest.mark.parametrize(
    ("tolerance", "error"),
    [(-1, ValueError), (math.nan, ValueError), ("300", TypeError), (True, TypeError)],
)
def test_invalid_tolerance(tolerance: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="tolerance"):
        Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET, tolerance=tolerance)


def test_zero_tolerance(clock: list[float]) -> None:
    assert Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET, tolerance=0)
    clock[0] += 1
    with pytest.raises(InvalidTimestampError):
        Webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET, tolerance=0)


def test_body_of_wrong_type(clock: list[float]) -> None:
    with pytest.raises(TypeError, match="body"):
        Webhooks.validate(headers=HEADERS, body=json.loads(BODY), secret=SECRET)


# ------------------------------------------------------------------------------------------
# Messages never leak
# ------------------------------------------------------------------------------------------


def test_no_error_leaks_secret_or_signature(clock: list[float]) -> None:
    cases: list[dict[str, Any]] = [
        {"headers": headers_with(webhook_signature=f"v1,{SIGNATURE}"), "body": BODY + " "},
        {"headers": headers_with(webhook_signature=f"v2,{SIGNATURE}"), "body": BODY},
        {"headers": headers_with(webhook_signature=f"v1,{SIGNATURE}!"), "body": BODY},
        {"headers": headers_with(webhook_timestamp=SIGNATURE), "body": BODY},
        {"headers": headers_with(webhook_signature=None), "body": BODY},
        {"headers": HEADERS, "body": BODY, "secret": SECRET + "!"},
        {"headers": HEADERS, "body": BODY, "tolerance": 0, "now": TIMESTAMP + 5},
    ]
    for case in cases:
        clock[0] = case.pop("now", TIMESTAMP)
        case.setdefault("secret", SECRET)
        with pytest.raises(WebhookValidationError) as info:
            Webhooks.validate(**case)
        assert_no_secrets(info.value)
        assert MSG_ID not in str(info.value)


# ------------------------------------------------------------------------------------------
# Headers and request objects of several shapes
# ------------------------------------------------------------------------------------------


def test_header_names_any_case(clock: list[float]) -> None:
    headers = {
        "Webhook-Id": MSG_ID,
        "WEBHOOK-TIMESTAMP": str(TIMESTAMP),
        "webhook-Signature": f"v1,{SIGNATURE}",
    }
    assert Webhooks.validate(headers=headers, body=BODY, secret=SECRET)


def test_wsgi_meta_style_headers(clock: list[float]) -> None:
    headers = {
        "HTTP_WEBHOOK_ID": MSG_ID,
        "HTTP_WEBHOOK_TIMESTAMP": str(TIMESTAMP),
        "HTTP_WEBHOOK_SIGNATURE": f"v1,{SIGNATURE}",
        "CONTENT_TYPE": "application/json",
    }
    assert Webhooks.validate(headers=headers, body=BODY, secret=SECRET)


def test_headers_as_httpx_headers_and_pairs(clock: list[float]) -> None:
    assert Webhooks.validate(headers=httpx.Headers(HEADERS), body=BODY, secret=SECRET)
    assert Webhooks.validate(headers=list(HEADERS.items()), body=BODY, secret=SECRET)
    raw = [(k.encode(), v.encode()) for k, v in HEADERS.items()]  # ASGI-style raw headers
    assert Webhooks.validate(headers=raw, body=BODY, secret=SECRET)


def test_httpx_request(clock: list[float]) -> None:
    request = httpx.Request("POST", "https://example.com/hook", headers=HEADERS, content=BODY)
    assert Webhooks.validate(request=request, secret=SECRET)


def test_httpx_request_with_streamed_body(clock: list[float]) -> None:
    chunks = [BODY[:5].encode(), BODY[5:].encode()]
    request = httpx.Request(
        "POST", "https://example.com/hook", headers=HEADERS, content=iter(chunks)
    )
    assert Webhooks.validate(request=request, secret=SECRET)


def test_httpx_request_tampered(clock: list[float]) -> None:
    request = httpx.Request("POST", "https://x/hook", headers=HEADERS, content=BODY + "\n")
    with pytest.raises(InvalidSignatureError):
        Webhooks.validate(request=request, secret=SECRET)


async def test_starlette_request_after_body_was_read(clock: list[float]) -> None:
    from starlette.requests import Request

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/hook",
        "headers": [(k.encode(), v.encode()) for k, v in HEADERS.items()],
        "query_string": b"",
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:  # pragma: no cover - the body is read once
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": BODY.encode(), "more_body": False}

    request = Request(scope, receive)
    with pytest.raises(MissingWebhookBodyError, match=r"await request\.body\(\)"):
        Webhooks.validate(request=request, secret=SECRET)
    await request.body()
    assert Webhooks.validate(request=request, secret=SECRET)


class FlaskLikeRequest:
    """Shape of a Flask/Werkzeug request: case-insensitive headers, get_data()."""

    def __init__(self, headers: dict[str, str], data: bytes) -> None:
        self.headers = httpx.Headers(headers)
        self._data = data
        self.content_type = "application/json"

    def get_data(self, cache: bool = True, as_text: bool = False) -> bytes:
        return self._data


class DjangoLikeRequest:
    """Shape of a Django request: META with HTTP_* keys and a bytes body."""

    def __init__(self, headers: dict[str, str], body: bytes, *, with_headers: bool) -> None:
        self.META = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
        self.META["CONTENT_LENGTH"] = str(len(body))
        if with_headers:
            self.headers = {k.title(): v for k, v in headers.items()}
        self.body = body


class SimpleRequest:
    def __init__(self, headers: dict[str, str], **attributes: Any) -> None:
        self.headers = headers
        self.__dict__.update(attributes)


@pytest.mark.parametrize(
    "make",
    [
        lambda body: FlaskLikeRequest(HEADERS, body),
        lambda body: DjangoLikeRequest(HEADERS, body, with_headers=False),
        lambda body: DjangoLikeRequest(HEADERS, body, with_headers=True),
        lambda body: SimpleRequest(HEADERS, body=body),
        lambda body: SimpleRequest(HEADERS, body=body.decode()),
        lambda body: SimpleRequest(HEADERS, content=body),
        lambda body: SimpleRequest(HEADERS, content=bytearray(body)),
        lambda body: SimpleRequest(HEADERS, _read_bytes=body),  # aiohttp after read()
    ],
    ids=[
        "flask",
        "django-meta",
        "django-headers",
        "body-bytes",
        "body-str",
        "content",
        "bytearray",
        "aiohttp",
    ],
)
def test_request_shapes(clock: list[float], make: Any) -> None:
    assert Webhooks.validate(request=make(BODY.encode()), secret=SECRET)
    with pytest.raises(InvalidSignatureError):
        Webhooks.validate(request=make(BODY.encode() + b" "), secret=SECRET)


def test_request_without_body(clock: list[float]) -> None:
    with pytest.raises(MissingWebhookBodyError, match="Missing webhook body"):
        Webhooks.validate(request=SimpleRequest(HEADERS), secret=SECRET)


# ------------------------------------------------------------------------------------------
# Body encodings
# ------------------------------------------------------------------------------------------


def test_bytes_are_used_exactly(clock: list[float]) -> None:
    body = b'{"output": "caf\xe9 \xff"}'  # not UTF-8: only the bytes form can match
    headers = headers_with(webhook_signature=f"v1,{sign(MSG_ID, TIMESTAMP, body)}")
    assert Webhooks.validate(headers=headers, body=body, secret=SECRET)
    with pytest.raises(InvalidSignatureError):
        Webhooks.validate(headers=headers, body=body.decode("latin-1"), secret=SECRET)


def test_str_is_encoded_as_utf8(clock: list[float]) -> None:
    text = '{"output": "café ☕"}'
    headers = headers_with(webhook_signature=f"v1,{sign(MSG_ID, TIMESTAMP, text.encode())}")
    assert Webhooks.validate(headers=headers, body=text, secret=SECRET)
    assert Webhooks.validate(headers=headers, body=text.encode(), secret=SECRET)
    assert Webhooks.validate(headers=headers, body=memoryview(text.encode()), secret=SECRET)


# ------------------------------------------------------------------------------------------
# Exceptions, entry points, the secret endpoint
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls",
    [
        MissingWebhookHeaderError,
        MissingWebhookBodyError,
        InvalidTimestampError,
        InvalidSignatureError,
        InvalidSecretKeyError,
    ],
)
def test_exception_tree_and_pickling(cls: type[Exception]) -> None:
    assert issubclass(cls, WebhookValidationError)
    assert issubclass(cls, ValueError)
    err = cls("message")
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is cls and clone.args == ("message",)


def test_validate_entry_points(clock: list[float]) -> None:
    client = Client(api_token="r8_test")
    assert replicate.webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET)
    assert client.webhooks.validate(headers=HEADERS, body=BODY, secret=SECRET)
    assert Webhooks.validate(None, HEADERS, BODY, SECRET, None)  # 1.0.x positional order


def make_client(handler: Any) -> Client:
    transport = httpx.MockTransport(handler)
    return Client(api_token="r8_test", base_url="https://api.replicate.com", transport=transport)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def get_secret(client: Client, mode: str, **kwargs: Any) -> WebhookSigningSecret:
    if mode == "sync":
        return client.webhooks.default.secret(**kwargs)
    return await client.webhooks.default.async_secret(**kwargs)


async def test_default_secret(mode: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"key": SECRET, "new_field": 1})

    client = make_client(handler)
    secret = await get_secret(client, mode)
    assert isinstance(secret, WebhookSigningSecret)
    assert secret.key == SECRET
    assert secret.new_field == 1  # type: ignore[attr-defined]
    assert SECRET_BODY not in repr(secret)
    assert secret._client is client
    [request] = seen
    assert request.method == "GET"
    assert str(request.url) == "https://api.replicate.com/v1/webhooks/default/secret"
    assert request.content == b""
    assert request.headers["authorization"] == "Bearer r8_test"


async def test_default_secret_extras(mode: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"key": SECRET})

    client = make_client(handler)
    await get_secret(client, mode, extra_headers={"X-Trace": "1"}, extra_query={"a": "b"})
    assert seen[0].headers["x-trace"] == "1"
    assert seen[0].url.params["a"] == "b"


async def test_default_secret_error(mode: str) -> None:
    from replicate.exceptions import ReplicateError

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"title": "Unauthenticated", "status": 401})

    with pytest.raises(ReplicateError) as info:
        await get_secret(make_client(handler), mode)
    assert info.value.status == 401


async def test_secret_from_endpoint_validates(clock: list[float], mode: str) -> None:
    client = make_client(lambda request: httpx.Response(200, json={"key": SECRET}))
    secret = await get_secret(client, mode)
    assert Webhooks.validate(headers=HEADERS, body=BODY, secret=secret)


def test_repeated_signature_headers_are_all_considered(clock: list[float]) -> None:
    headers = httpx.Headers(
        [
            ("webhook-id", MSG_ID),
            ("webhook-timestamp", str(TIMESTAMP)),
            ("webhook-signature", f"v1,{SIGNATURE}"),
            ("webhook-signature", f"v1,{WRONG}"),
        ]
    )
    assert Webhooks.validate(headers=headers, body=BODY, secret=SECRET)
    request = httpx.Request("POST", "https://example.com/hook", headers=headers, content=BODY)
    assert Webhooks.validate(request=request, secret=SECRET)
