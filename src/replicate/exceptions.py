"""The exception tree of the replicate client.

::

    ReplicateException(Exception)
    ├── ReplicateError                     an HTTP/API problem (RFC 7807 fields)
    │   ├── BadRequestError                400
    │   ├── AuthenticationError            401
    │   ├── PermissionDeniedError          403
    │   ├── NotFoundError                  404
    │   ├── ConflictError                  409
    │   ├── UnprocessableEntityError       422
    │   ├── RateLimitError                 429 (.retry_after)
    │   ├── InternalServerError            >= 500
    │   ├── APIResponseValidationError     2xx with an undecodable body
    │   └── DownloadError                  also httpx.HTTPStatusError
    ├── ModelError                         a prediction failed (.prediction)
    │   ├── PredictionCanceledError        it was canceled
    │   └── PredictionAbortedError         it was aborted before it started
    ├── PredictionTimeoutError             also TimeoutError (.prediction, .canceled)
    └── APIRequestError                    also httpx.RequestError
        ├── APIConnectionError             also httpx.TransportError
        │   ├── APITimeoutError            also httpx.TimeoutException
        │   │   └── ReplicateConnectTimeout, ReplicateReadTimeout, ...
        │   └── ReplicateConnectError, ReplicateReadError, ...
        └── ReplicateDecodingError, ReplicateTooManyRedirects

Transport errors keep being instances of the exact httpx class they wrap, so
``except httpx.ReadTimeout`` keeps working.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIRequestError",
    "APIResponseValidationError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "DownloadError",
    "InternalServerError",
    "ModelError",
    "ModelStreamError",
    "NotFoundError",
    "PermissionDeniedError",
    "PredictionAbortedError",
    "PredictionCanceledError",
    "PredictionTimeoutError",
    "RateLimitError",
    "ReplicateCloseError",
    "ReplicateConnectError",
    "ReplicateConnectTimeout",
    "ReplicateDecodingError",
    "ReplicateError",
    "ReplicateException",
    "ReplicateLocalProtocolError",
    "ReplicatePoolTimeout",
    "ReplicateProxyError",
    "ReplicateReadError",
    "ReplicateReadTimeout",
    "ReplicateRemoteProtocolError",
    "ReplicateTooManyRedirects",
    "ReplicateUnsupportedProtocol",
    "ReplicateWriteError",
    "ReplicateWriteTimeout",
    "UnprocessableEntityError",
    "wrap_transport_error",
]

_MAX_DETAIL = 2000
_FIELDS = ("type", "title", "status", "detail", "instance")


class ReplicateException(Exception):
    """Base class of every exception raised by this library."""


class ReplicateError(ReplicateException):
    """An error returned by the Replicate API, with the RFC 7807 problem details.

    ``status`` and ``status_code`` hold the HTTP status; the parsed body stays in ``body``.
    A single positional argument is taken as the human-readable message (``detail``).
    """

    type: str | None
    title: str | None
    status: int | None
    detail: str | None
    instance: str | None

    def __init__(
        self,
        *args: Any,
        type: str | None = None,
        title: str | None = None,
        status: int | None = None,
        detail: str | None = None,
        instance: str | None = None,
        body: Any = None,
        headers: httpx.Headers | None = None,
        request: httpx.Request | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        if len(args) > 5:
            raise TypeError(
                f"ReplicateError takes at most 5 positional arguments ({len(args)} given)"
            )
        if len(args) == 1:
            detail = args[0]
        elif args:
            positional = dict(zip(_FIELDS, args, strict=False))
            type = positional.get("type", type)
            title = positional.get("title", title)
            status = positional.get("status", status)
            detail = positional.get("detail", detail)
            instance = positional.get("instance", instance)
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.instance = instance
        self.body = body
        self.headers = headers
        self.request = request
        self.response = response
        Exception.__init__(self, detail or title or self._details_text())

    @property
    def status_code(self) -> int | None:
        """The HTTP status code (same as ``status``)."""
        return self.status

    def __reduce__(self) -> Any:
        state = {
            k: v for k, v in self.__dict__.items() if k not in ("request", "response", "_request")
        }
        return (_rebuild_error, (self.__class__, self.to_dict(), self.body), state)

    @classmethod
    def from_response(cls, response: httpx.Response) -> ReplicateError:
        """Build the status-mapped error for an HTTP response (its body must be read)."""
        status = response.status_code
        try:
            text = response.text
        except Exception:  # a streamed body that was never read
            text = ""
        body: Any = text or None
        fields: dict[str, Any] = {}
        try:
            body = json.loads(text) if text else None
        except ValueError:
            pass
        if isinstance(body, dict):
            for name in ("type", "title", "detail", "instance"):
                value = body.get(name)
                if value is not None:
                    fields[name] = value if isinstance(value, str) else json.dumps(value)
        else:
            stripped = text.strip()
            fields["detail"] = stripped[:_MAX_DETAIL] if stripped else None
        error_cls = _class_for_status(status) if cls is ReplicateError else cls
        error = error_cls(
            type=fields.get("type"),
            title=fields.get("title"),
            status=status,
            detail=fields.get("detail"),
            instance=fields.get("instance"),
            body=body,
            headers=response.headers,
            request=_request_of(response),
            response=response,
        )
        if isinstance(error, RateLimitError):
            error.retry_after = _retry_after(body, response.headers)
        return error

    def to_dict(self) -> dict[str, Any]:
        """The problem-detail fields that are set, in RFC 7807 order."""
        return {k: getattr(self, k) for k in _FIELDS if getattr(self, k) is not None}

    def _details_text(self) -> str:
        lines = ["ReplicateError Details:"]
        lines += [f"{k}: {v}" for k, v in self.to_dict().items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._details_text()

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in _FIELDS)
        return f"{self.__class__.__name__}({inner})"


def _rebuild_error(cls: type[ReplicateError], fields: dict[str, Any], body: Any) -> ReplicateError:
    return cls(**fields, body=body)


class BadRequestError(ReplicateError):
    """HTTP 400."""


class AuthenticationError(ReplicateError):
    """HTTP 401: the API token is missing or invalid."""


class PermissionDeniedError(ReplicateError):
    """HTTP 403."""


class NotFoundError(ReplicateError):
    """HTTP 404."""


class ConflictError(ReplicateError):
    """HTTP 409."""


class UnprocessableEntityError(ReplicateError):
    """HTTP 422: the request was understood but its content is invalid (e.g. bad input)."""


class RateLimitError(ReplicateError):
    """HTTP 429. ``retry_after`` holds the suggested wait in seconds, when known."""

    retry_after: float | None = None


class InternalServerError(ReplicateError):
    """HTTP 5xx."""


class APIResponseValidationError(ReplicateError):
    """A successful response whose body could not be decoded as expected."""


class DownloadError(ReplicateError, httpx.HTTPStatusError):  # type: ignore[misc]
    """A file download failed with an HTTP error status (also an ``httpx.HTTPStatusError``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        ReplicateError.__init__(self, *args, **kwargs)


_STATUS_CLASSES: dict[int, type[ReplicateError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def _class_for_status(status: int) -> type[ReplicateError]:
    if status >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status, ReplicateError)


def _request_of(response: httpx.Response) -> httpx.Request | None:
    try:
        return response.request
    except RuntimeError:
        return None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            import datetime as _dt

            when = when.replace(tzinfo=_dt.timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(seconds, 0.0)


def _retry_after(body: Any, headers: httpx.Headers) -> float | None:
    if isinstance(body, dict):
        value = body.get("retry_after")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return parse_retry_after(headers.get("retry-after"))


def _prediction_label(prediction: Any) -> str:
    return str(getattr(prediction, "id", None) or "")


class ModelError(ReplicateException):
    """The model failed. ``prediction`` holds the failed prediction (or training)."""

    def __init__(self, prediction: Any) -> None:
        self.prediction = prediction
        super().__init__(self._message(prediction))

    @classmethod
    def _message(cls, prediction: Any) -> str:
        error = getattr(prediction, "error", None)
        if isinstance(prediction, str):
            return prediction
        if error:
            return str(error)
        status = getattr(prediction, "status", None)
        label = _prediction_label(prediction)
        if status not in (None, "failed", "succeeded", "canceled", "aborted"):
            return f"Prediction {label} ended with status {status}"
        return f"Prediction {label} failed"

    def __reduce__(self) -> Any:
        return (self.__class__, (self.prediction,))


class ModelStreamError(ModelError, RuntimeError):
    """The model failed while its output was streamed (an ``error`` event on the stream).

    A :class:`ModelError` (``.prediction`` holds the failed prediction) that is also a
    ``RuntimeError``, which is what 1.0.x raised here, so both ``except ModelError`` and the
    ``except RuntimeError`` of code written for 1.0.x catch it.
    """


class PredictionCanceledError(ModelError):
    """The prediction was canceled."""

    @classmethod
    def _message(cls, prediction: Any) -> str:
        return f"Prediction {_prediction_label(prediction)} was canceled"


class PredictionAbortedError(ModelError):
    """The prediction was aborted before it started (e.g. its Cancel-After deadline passed)."""

    @classmethod
    def _message(cls, prediction: Any) -> str:
        return f"Prediction {_prediction_label(prediction)} was aborted before it started"


class PredictionTimeoutError(ReplicateException, TimeoutError):
    """A wait ran past its ``timeout``. ``prediction`` is the last known state."""

    def __init__(
        self, prediction: Any, timeout: float | None = None, canceled: bool = False
    ) -> None:
        self.prediction = prediction
        self.timeout = timeout
        self.canceled = canceled
        super().__init__(
            f"Prediction {_prediction_label(prediction)} did not finish within {timeout} seconds"
        )

    def __reduce__(self) -> Any:
        return (self.__class__, (self.prediction, self.timeout, self.canceled))


class APIRequestError(ReplicateException, httpx.RequestError):
    """A request could not be completed (also an ``httpx.RequestError``)."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        httpx.RequestError.__init__(self, message, request=request)

    def __reduce__(self) -> Any:
        return (self.__class__, (str(self),))


class APIConnectionError(APIRequestError, httpx.TransportError):
    """A transport failure: connection, protocol or network problem."""


class APITimeoutError(APIConnectionError, httpx.TimeoutException):
    """A timeout while talking to the API or a file host."""


class ReplicateConnectTimeout(APITimeoutError, httpx.ConnectTimeout):
    """Wraps ``httpx.ConnectTimeout``."""


class ReplicateReadTimeout(APITimeoutError, httpx.ReadTimeout):
    """Wraps ``httpx.ReadTimeout``."""


class ReplicateWriteTimeout(APITimeoutError, httpx.WriteTimeout):
    """Wraps ``httpx.WriteTimeout``."""


class ReplicatePoolTimeout(APITimeoutError, httpx.PoolTimeout):
    """Wraps ``httpx.PoolTimeout``."""


class ReplicateConnectError(APIConnectionError, httpx.ConnectError):
    """Wraps ``httpx.ConnectError``."""


class ReplicateReadError(APIConnectionError, httpx.ReadError):
    """Wraps ``httpx.ReadError``."""


class ReplicateWriteError(APIConnectionError, httpx.WriteError):
    """Wraps ``httpx.WriteError``."""


class ReplicateCloseError(APIConnectionError, httpx.CloseError):
    """Wraps ``httpx.CloseError``."""


class ReplicateRemoteProtocolError(APIConnectionError, httpx.RemoteProtocolError):
    """Wraps ``httpx.RemoteProtocolError``."""


class ReplicateLocalProtocolError(APIConnectionError, httpx.LocalProtocolError):
    """Wraps ``httpx.LocalProtocolError``."""


class ReplicateProxyError(APIConnectionError, httpx.ProxyError):
    """Wraps ``httpx.ProxyError``."""


class ReplicateUnsupportedProtocol(APIConnectionError, httpx.UnsupportedProtocol):
    """Wraps ``httpx.UnsupportedProtocol``."""


class ReplicateDecodingError(APIRequestError, httpx.DecodingError):
    """Wraps ``httpx.DecodingError``."""


class ReplicateTooManyRedirects(APIRequestError, httpx.TooManyRedirects):
    """Wraps ``httpx.TooManyRedirects``."""


_WRAPPERS: dict[type[Exception], type[APIRequestError]] = {
    httpx.ConnectTimeout: ReplicateConnectTimeout,
    httpx.ReadTimeout: ReplicateReadTimeout,
    httpx.WriteTimeout: ReplicateWriteTimeout,
    httpx.PoolTimeout: ReplicatePoolTimeout,
    httpx.TimeoutException: APITimeoutError,
    httpx.ConnectError: ReplicateConnectError,
    httpx.ReadError: ReplicateReadError,
    httpx.WriteError: ReplicateWriteError,
    httpx.CloseError: ReplicateCloseError,
    httpx.RemoteProtocolError: ReplicateRemoteProtocolError,
    httpx.LocalProtocolError: ReplicateLocalProtocolError,
    httpx.ProxyError: ReplicateProxyError,
    httpx.UnsupportedProtocol: ReplicateUnsupportedProtocol,
    httpx.TransportError: APIConnectionError,
    httpx.DecodingError: ReplicateDecodingError,
    httpx.TooManyRedirects: ReplicateTooManyRedirects,
    httpx.RequestError: APIRequestError,
}


def wrap_transport_error(exc: httpx.RequestError) -> APIRequestError:
    """The replicate wrapper of an httpx request error (already-wrapped errors are returned as is)."""
    if isinstance(exc, APIRequestError):
        return exc
    wrapper: type[APIRequestError] = APIRequestError
    for klass in type(exc).__mro__:
        found = _WRAPPERS.get(klass)
        if found is not None:
            wrapper = found
            break
    try:
        request: httpx.Request | None = exc.request
    except RuntimeError:
        request = None
    wrapped = wrapper(str(exc), request=request)
    wrapped.__cause__ = exc
    return wrapped
