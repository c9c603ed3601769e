"""The exception tree: status mapping, RFC 7807 fields, str/repr, pickling, transport wrappers."""

from __future__ import annotations

import email.utils
import pickle
import time

import httpx
import pytest

from replicate import exceptions as exc

REQ = httpx.Request("GET", "https://api.replicate.com/v1/predictions/x")


def response(status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=REQ, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, exc.BadRequestError),
        (401, exc.AuthenticationError),
        (403, exc.PermissionDeniedError),
        (404, exc.NotFoundError),
        (409, exc.ConflictError),
        (422, exc.UnprocessableEntityError),
        (429, exc.RateLimitError),
        (500, exc.InternalServerError),
        (503, exc.InternalServerError),
        (402, exc.ReplicateError),
        (413, exc.ReplicateError),
        (302, exc.ReplicateError),
    ],
)
def test_status_mapping(status: int, cls: type[exc.ReplicateError]) -> None:
    error = exc.ReplicateError.from_response(response(status, json={"detail": "d"}))
    assert type(error) is cls
    assert error.status == error.status_code == status
    assert isinstance(error, exc.ReplicateException)


def test_problem_details_and_http_status_authoritative() -> None:
    body = {
        "type": "https://replicate.com/docs/errors#x",
        "title": "Unauthenticated",
        "status": 418,
        "detail": "You did not pass a valid authentication token",
        "instance": "/v1/x",
    }
    error = exc.ReplicateError.from_response(response(401, json=body))
    assert error.title == "Unauthenticated"
    assert error.status == 401
    assert error.body["status"] == 418
    assert error.to_dict() == {**body, "status": 401}
    assert str(error).splitlines() == [
        "ReplicateError Details:",
        "type: https://replicate.com/docs/errors#x",
        "title: Unauthenticated",
        "status: 401",
        "detail: You did not pass a valid authentication token",
        "instance: /v1/x",
    ]
    assert repr(error).startswith("AuthenticationError(type='https://replicate.com/docs/errors#x'")
    assert error.args == ("You did not pass a valid authentication token",)


@pytest.mark.parametrize(
    ("kwargs", "detail"),
    [
        (
            {"text": "<html><body>502 Bad Gateway</body></html>"},
            "<html><body>502 Bad Gateway</body></html>",
        ),
        ({"content": b""}, None),
        ({"json": ["a", "b"]}, '["a","b"]'),
        ({"text": "  x" * 2000}, ("  x" * 2000).strip()[:2000]),
    ],
)
def test_any_error_body_gives_a_replicate_error(
    kwargs: dict[str, object], detail: str | None
) -> None:
    error = exc.ReplicateError.from_response(response(502, **kwargs))
    assert isinstance(error, exc.InternalServerError)
    assert error.status == 502
    assert error.detail == detail


def test_single_positional_argument_is_the_message() -> None:
    error = exc.ReplicateError("Model does not support streaming")
    assert error.detail == "Model does not support streaming"
    assert error.args == ("Model does not support streaming",)
    five = exc.ReplicateError("t", "Title", 400, "Detail", "/i")
    assert (five.type, five.title, five.status, five.detail, five.instance) == (
        "t",
        "Title",
        400,
        "Detail",
        "/i",
    )
    with pytest.raises(TypeError):
        exc.ReplicateError(1, 2, 3, 4, 5, 6)


def test_rate_limit_retry_after_sources() -> None:
    from_body = exc.ReplicateError.from_response(
        response(429, json={"detail": "slow down", "retry_after": 7}, headers={"Retry-After": "3"})
    )
    assert isinstance(from_body, exc.RateLimitError)
    assert from_body.retry_after == 7.0
    from_header = exc.ReplicateError.from_response(response(429, headers={"Retry-After": "3"}))
    assert from_header.retry_after == 3.0  # type: ignore[attr-defined]
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    from_date = exc.ReplicateError.from_response(response(429, headers={"Retry-After": date}))
    assert 25 <= from_date.retry_after <= 31  # type: ignore[attr-defined,operator]
    none = exc.ReplicateError.from_response(response(429, headers={"Retry-After": "soon"}))
    assert none.retry_after is None  # type: ignore[attr-defined]


def test_errors_pickle() -> None:
    error = exc.ReplicateError.from_response(response(429, json={"detail": "x", "retry_after": 2}))
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is exc.RateLimitError
    assert clone.to_dict() == error.to_dict()
    assert clone.retry_after == 2.0
    for error2 in (
        exc.ModelError("boom"),
        exc.PredictionTimeoutError(None, 3.0, True),
        exc.wrap_transport_error(httpx.ReadTimeout("slow", request=REQ)),
        exc.DownloadError.from_response(response(404, text="gone")),
    ):
        clone2 = pickle.loads(pickle.dumps(error2))
        assert type(clone2) is type(error2)
        assert str(clone2) == str(error2)


@pytest.mark.parametrize(
    ("original", "wrapper", "httpx_base"),
    [
        (httpx.ConnectTimeout, exc.ReplicateConnectTimeout, httpx.TimeoutException),
        (httpx.ReadTimeout, exc.ReplicateReadTimeout, httpx.TimeoutException),
        (httpx.WriteTimeout, exc.ReplicateWriteTimeout, httpx.TimeoutException),
        (httpx.PoolTimeout, exc.ReplicatePoolTimeout, httpx.TimeoutException),
        (httpx.ConnectError, exc.ReplicateConnectError, httpx.NetworkError),
        (httpx.ReadError, exc.ReplicateReadError, httpx.NetworkError),
        (httpx.WriteError, exc.ReplicateWriteError, httpx.NetworkError),
        (httpx.CloseError, exc.ReplicateCloseError, httpx.NetworkError),
        (httpx.RemoteProtocolError, exc.ReplicateRemoteProtocolError, httpx.ProtocolError),
        (httpx.LocalProtocolError, exc.ReplicateLocalProtocolError, httpx.ProtocolError),
        (httpx.ProxyError, exc.ReplicateProxyError, httpx.TransportError),
        (httpx.UnsupportedProtocol, exc.ReplicateUnsupportedProtocol, httpx.TransportError),
        (httpx.DecodingError, exc.ReplicateDecodingError, httpx.RequestError),
        (httpx.TooManyRedirects, exc.ReplicateTooManyRedirects, httpx.RequestError),
    ],
)
def test_transport_errors_are_wrapped_and_still_httpx(
    original: type[httpx.RequestError], wrapper: type[Exception], httpx_base: type[Exception]
) -> None:
    source = original("went wrong", request=REQ)
    wrapped = exc.wrap_transport_error(source)
    assert type(wrapped) is wrapper
    assert isinstance(wrapped, original)
    assert isinstance(wrapped, httpx_base)
    assert isinstance(wrapped, exc.APIRequestError)
    assert isinstance(wrapped, exc.ReplicateException)
    assert wrapped.request is REQ
    assert wrapped.__cause__ is source
    assert str(wrapped) == "went wrong"
    assert exc.wrap_transport_error(wrapped) is wrapped


def test_unknown_transport_error_subclass_maps_to_closest_base() -> None:
    class Weird(httpx.NetworkError):
        pass

    wrapped = exc.wrap_transport_error(Weird("?", request=REQ))
    assert type(wrapped) is exc.APIConnectionError


def test_model_error_messages() -> None:
    class P:
        id = "abc"
        error = None
        status = "failed"

    assert str(exc.ModelError(P())) == "Prediction abc failed"
    P.error = "CUDA out of memory"  # type: ignore[assignment]
    assert str(exc.ModelError(P())) == "CUDA out of memory"
    assert str(exc.PredictionCanceledError(P())) == "Prediction abc was canceled"
    assert str(exc.PredictionAbortedError(P())) == "Prediction abc was aborted before it started"
    assert issubclass(exc.PredictionCanceledError, exc.ModelError)
    timeout = exc.PredictionTimeoutError(P(), 5, canceled=True)
    assert isinstance(timeout, TimeoutError)
    assert str(timeout) == "Prediction abc did not finish within 5 seconds"
    assert timeout.canceled is True


def test_download_error_is_http_status_error() -> None:
    error = exc.DownloadError.from_response(response(403, text="denied"))
    assert isinstance(error, httpx.HTTPStatusError)
    assert isinstance(error, exc.ReplicateError)
    assert error.response.status_code == 403
    assert error.request is REQ
