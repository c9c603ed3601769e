"""Webhook signatures truncated or extended never validate: the client's
``replicate.webhooks.validate`` against a real delivery, and the server's signer against an
independent HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import replicate
from replicate.local.server import LocalServer
from replicate.local.webhooks import new_secret, sign
from replicate.webhook import InvalidSignatureError

from .support import Receiver


@pytest.fixture(scope="module")
def delivery() -> Iterator[tuple[dict[str, str], bytes, str]]:
    """One real ``completed`` webhook (headers, body) and the server's secret."""
    receiver = Receiver()
    try:
        with LocalServer(test_controls=True) as server:
            r = httpx.post(
                f"{server.base_url}/v1/models/local-demo/sleep/predictions",
                json={
                    "input": {"seconds": 0},
                    "webhook": receiver.url,
                    "webhook_events_filter": ["completed"],
                },
                headers={"Authorization": "Bearer sig"},
            )
            pid = r.json()["id"]
            got = receiver.wait_for(lambda rs: any(x["json"]["id"] == pid for x in rs))
            req = next(x for x in got if x["json"]["id"] == pid)
            yield req["headers"], req["body"], server.webhook_secret
    finally:
        receiver.close()


def with_signature(headers: dict[str, str], value: str) -> dict[str, str]:
    return {**headers, "webhook-signature": value}


def test_the_real_signature_validates(delivery: tuple[dict[str, str], bytes, str]) -> None:
    headers, body, secret = delivery
    assert replicate.webhooks.validate(headers=headers, body=body, secret=secret) is True


def _variants(sig: str) -> list[tuple[str, str]]:
    version, _, b64 = sig.partition(",")
    raw = base64.b64decode(b64)
    return [
        ("last char dropped", f"{version},{b64[:-1]}"),
        ("padding dropped", f"{version},{b64.rstrip('=')}"),
        ("half", f"{version},{b64[: len(b64) // 2]}"),
        ("first byte only", f"{version},{base64.b64encode(raw[:1]).decode()}"),
        ("31 of 32 bytes", f"{version},{base64.b64encode(raw[:-1]).decode()}"),
        ("one byte extra", f"{version},{base64.b64encode(raw + b'x').decode()}"),
        ("doubled", f"{version},{base64.b64encode(raw + raw).decode()}"),
        ("chars appended", f"{version},{b64}AA"),
        ("empty", f"{version},"),
        ("no version", b64),
        ("v2", f"v2,{b64}"),
        (
            "last byte flipped",
            f"{version},{base64.b64encode(raw[:-1] + bytes([raw[-1] ^ 1])).decode()}",
        ),
    ]


@pytest.mark.parametrize("index", range(12))
def test_truncated_and_extended_signatures_are_rejected(
    delivery: tuple[dict[str, str], bytes, str], index: int
) -> None:
    headers, body, secret = delivery
    _name, bad = _variants(headers["webhook-signature"])[index]
    with pytest.raises(InvalidSignatureError):
        replicate.webhooks.validate(headers=with_signature(headers, bad), body=body, secret=secret)


def test_one_good_signature_among_bad_ones_validates(
    delivery: tuple[dict[str, str], bytes, str],
) -> None:
    headers, body, secret = delivery
    good = headers["webhook-signature"]
    bads = " ".join(bad for _, bad in _variants(good))
    assert replicate.webhooks.validate(
        headers=with_signature(headers, f"{bads} {good}"), body=body, secret=secret
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda h, b: ({**h, "webhook-id": h["webhook-id"] + "x"}, b),
        lambda h, b: ({**h, "webhook-id": h["webhook-id"][:-1]}, b),
        lambda h, b: (h, b + b" "),
        lambda h, b: (h, b[:-1]),
        lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}, b),
    ],
    ids=["id-extended", "id-truncated", "body-extended", "body-truncated", "timestamp"],
)
def test_signed_parts_changed_are_rejected(
    delivery: tuple[dict[str, str], bytes, str], change: Any
) -> None:
    headers, body, secret = delivery
    h, b = change(headers, body)
    with pytest.raises(InvalidSignatureError):
        replicate.webhooks.validate(headers=h, body=b, secret=secret)


def test_a_truncated_or_extended_secret_is_rejected(
    delivery: tuple[dict[str, str], bytes, str],
) -> None:
    headers, body, secret = delivery
    key = base64.b64decode(secret.removeprefix("whsec_"))
    # (key + NUL bytes is the same HMAC key by definition: HMAC pads keys with zeros)
    for other in (key[:-1], key + b"x", key[1:]):
        wrong = "whsec_" + base64.b64encode(other).decode()
        with pytest.raises(InvalidSignatureError):
            replicate.webhooks.validate(headers=headers, body=body, secret=wrong)


def test_server_signer_matches_an_independent_hmac() -> None:
    secret = new_secret()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    body = b'{"id":"x","status":"succeeded"}'
    ts = int(time.time())
    expected = base64.b64encode(
        hmac.new(key, f"msg_1.{ts}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    assert sign(secret, "msg_1", ts, body) == f"v1,{expected}"
    assert sign(secret, "msg_1", ts, body + b" ") != f"v1,{expected}"
    assert sign(secret, "msg_2", ts, body) != f"v1,{expected}"
    assert sign(secret, "msg_1", ts + 1, body) != f"v1,{expected}"
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts)}
    headers["webhook-signature"] = sign(secret, "msg_1", ts, body)
    assert replicate.webhooks.validate(headers=headers, body=body, secret=secret)


# ---------------------------------------------------------------- mutants of webhook.py
# Each test below kills surviving mutants of ``replicate.webhook`` (docs: README here).


def test_a_list_valued_signature_header_is_split_into_entries(
    delivery: tuple[dict[str, str], bytes, str],
) -> None:
    headers, body, secret = delivery
    good = headers["webhook-signature"]
    listed: dict[str, Any] = {**headers, "webhook-signature": ["v1,AAAA", good]}
    assert replicate.webhooks.validate(headers=listed, body=body, secret=secret)
    raw: dict[str, Any] = {k: v.encode() for k, v in headers.items()}  # bytes values too
    assert replicate.webhooks.validate(headers=raw, body=body, secret=secret)


def test_bad_argument_messages_name_what_was_given(
    delivery: tuple[dict[str, str], bytes, str],
) -> None:
    headers, body, secret = delivery
    with pytest.raises(TypeError, match="not str"):
        replicate.webhooks.validate(headers=headers, body=body, secret=secret, tolerance="5")
    with pytest.raises(TypeError, match="mapping of header names to values, not int"):
        replicate.webhooks.validate(headers=42, body=body, secret=secret)  # type: ignore[arg-type]


class _Request:
    """A framework request stand-in: ``headers`` may be a method, the body in various places."""

    def __init__(self, headers: Any = None, meta: Any = None, **body: Any) -> None:
        if headers is not None:
            self.headers = headers
        if meta is not None:
            self.META = meta
        for name, value in body.items():
            setattr(self, name, value)


def test_request_objects_of_other_frameworks(
    delivery: tuple[dict[str, str], bytes, str],
) -> None:
    headers, body, secret = delivery
    meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}

    def method_headers() -> dict[str, str]:  # a callable ``headers`` is not a mapping
        return {}

    django_like = _Request(headers=method_headers, meta=meta, body=body)
    assert replicate.webhooks.validate(django_like, secret=secret)
    flask_like = _Request(headers=headers, get_data=lambda: body.decode())  # str from get_data
    assert replicate.webhooks.validate(flask_like, secret=secret)
    view = _Request(headers=headers, content=memoryview(body))
    assert replicate.webhooks.validate(view, secret=secret)
    array = _Request(headers=headers, get_data=lambda: bytearray(body))
    assert replicate.webhooks.validate(array, secret=secret)


async def test_unread_bodies_say_how_to_read_them(
    delivery: tuple[dict[str, str], bytes, str],
) -> None:
    from replicate.webhook import MissingWebhookBodyError

    headers, body, secret = delivery

    async def chunks() -> Any:
        yield body

    unread = httpx.Request("POST", "http://x/hook", headers=headers, content=chunks())
    with pytest.raises(
        MissingWebhookBodyError, match=r"read it first \(await request\.aread\(\)\)"
    ):
        replicate.webhooks.validate(unread, secret=secret)

    class Starlette:
        def __init__(self) -> None:
            self.headers = headers

        async def body(self) -> bytes:
            return body

    with pytest.raises(MissingWebhookBodyError, match=r"\(await request\.body\(\)\)"):
        replicate.webhooks.validate(Starlette(), secret=secret)


def test_secret_and_body_forms(delivery: tuple[dict[str, str], bytes, str]) -> None:
    from replicate.webhook import InvalidSecretKeyError, WebhookSigningSecret

    headers, body, secret = delivery
    assert replicate.webhooks.validate(headers=headers, body=body, secret=secret.encode())
    assert replicate.webhooks.validate(headers=headers, body=body.decode(), secret=secret)
    assert replicate.webhooks.validate(
        headers=headers, body=body, secret=WebhookSigningSecret(key=secret)
    )
    for bad in ("whsec_é".encode(), 12345, object()):
        with pytest.raises(InvalidSecretKeyError, match=r"^Invalid secret key format$"):
            replicate.webhooks.validate(headers=headers, body=body, secret=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="raw request body as str or bytes, not dict"):
        replicate.webhooks.validate(headers=headers, body={"id": 1}, secret=secret)  # type: ignore[arg-type]


def test_a_non_ascii_str_body_is_signed_as_utf8() -> None:
    secret = new_secret()
    body = '{"output":"héllo ✓"}'
    ts = int(time.time())
    headers = {
        "webhook-id": "msg_u",
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, "msg_u", ts, body.encode("utf-8")),
    }
    assert replicate.webhooks.validate(headers=headers, body=body, secret=secret)
