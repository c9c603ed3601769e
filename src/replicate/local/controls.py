"""Test controls (moto-style, off by default): faults, scripted outcomes, limits, request log.

Everything here is plain Python (no Starlette), shared by the ``/_local/*`` routes and the
``LocalServer`` handle:

- :class:`Faults`: injected faults. A fault has a *matcher* (``method``, ``path`` glob or
  ``operation`` id), an *action* (``status``, ``delay_ms``, ``drop``, ``hang``,
  ``sse_drop_after``, ``webhook_fail``, ``webhook_drop``, ``webhook_hang``) and a *budget*
  (``times``, ``probability``, ``until``). Faults apply in creation order.
- :class:`Scripts`: scripted outcomes for the next predictions of a model.
- :class:`RequestLog`: method, path, chosen headers, status and timing; never tokens.
- :func:`drop_connection` / :func:`hang_connection`: the ASGI side of ``drop`` and ``hang``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .gate import number

#: Request headers copied into the request log (never ``Authorization`` or cookies).
LOGGED_HEADERS = (
    "x-stainless-retry-count",
    "prefer",
    "cancel-after",
    "idempotency-key",
    "last-event-id",
)

#: Longest a ``hang`` fault holds a connection when the client never gives up (seconds).
MAX_HANG = 120.0

#: operationId -> (method, path glob) for the operations a fault can name.
OPERATIONS: dict[str, tuple[str, str]] = {
    "account.get": ("GET", "/v1/account"),
    "hardware.list": ("GET", "/v1/hardware"),
    "webhooks.default.secret.get": ("GET", "/v1/webhooks/default/secret"),
    "predictions.list": ("GET", "/v1/predictions"),
    "predictions.create": ("POST", "/v1/predictions"),
    "predictions.get": ("GET", "/v1/predictions/*"),
    "predictions.cancel": ("POST", "/v1/predictions/*/cancel"),
    "models.list": ("GET", "/v1/models"),
    "models.create": ("POST", "/v1/models"),
    "models.search": ("QUERY", "/v1/models"),
    "models.get": ("GET", "/v1/models/*/*"),
    "models.update": ("PATCH", "/v1/models/*/*"),
    "models.delete": ("DELETE", "/v1/models/*/*"),
    "models.examples.list": ("GET", "/v1/models/*/*/examples"),
    "models.predictions.create": ("POST", "/v1/models/*/*/predictions"),
    "models.readme.get": ("GET", "/v1/models/*/*/readme"),
    "models.versions.list": ("GET", "/v1/models/*/*/versions"),
    "models.versions.get": ("GET", "/v1/models/*/*/versions/*"),
    "models.versions.delete": ("DELETE", "/v1/models/*/*/versions/*"),
    "trainings.create": ("POST", "/v1/models/*/*/versions/*/trainings"),
    "trainings.list": ("GET", "/v1/trainings"),
    "trainings.get": ("GET", "/v1/trainings/*"),
    "trainings.cancel": ("POST", "/v1/trainings/*/cancel"),
    "deployments.list": ("GET", "/v1/deployments"),
    "deployments.create": ("POST", "/v1/deployments"),
    "deployments.get": ("GET", "/v1/deployments/*/*"),
    "deployments.update": ("PATCH", "/v1/deployments/*/*"),
    "deployments.delete": ("DELETE", "/v1/deployments/*/*"),
    "deployments.predictions.create": ("POST", "/v1/deployments/*/*/predictions"),
    "collections.list": ("GET", "/v1/collections"),
    "collections.get": ("GET", "/v1/collections/*"),
    "files.list": ("GET", "/v1/files"),
    "files.create": ("POST", "/v1/files"),
    "files.get": ("GET", "/v1/files/*"),
    "files.delete": ("DELETE", "/v1/files/*"),
    "files.download": ("GET", "/v1/files/*/download"),
    "search": ("GET", "/v1/search"),
    "stream": ("GET", "/v1/streams/*"),
}

#: Integer fields of a fault and their ranges (delays and hangs at most ``MAX_HANG``).
_INT_FIELDS = (
    ("retry_after", 0, 86400),
    ("delay_ms", 0, int(MAX_HANG * 1000)),
    ("hang_ms", 0, int(MAX_HANG * 1000)),
    ("sse_drop_after", 0, 1_000_000),
    ("times", 1, 1_000_000),
)
_MAX_UNTIL = 253402300799.0  # 9999-12-31T23:59:59Z
#: Most faults at once; more is a runaway test.
MAX_FAULTS = 1000


def _header_ok(name: str, value: str) -> bool:
    return (
        bool(name)
        and name.isascii()
        and name.isprintable()
        and ":" not in name
        and " " not in name
        and value.isascii()
        and value.isprintable()
    )


_HTTP_ACTIONS = ("status", "delay_ms", "drop", "drop_response", "hang")
_WEBHOOK_ACTIONS = ("webhook_fail", "webhook_drop", "webhook_hang")


def parse_time(value: Any) -> float:
    """Unix seconds from a number or an RFC 3339 string (``until``)."""
    if isinstance(value, bool):
        raise ValueError(f"until must be a time, got {value!r}")
    if isinstance(value, (int, float)):
        return number(value, "until", minimum=0, maximum=_MAX_UNTIL)
    if isinstance(value, str):
        from datetime import datetime, timezone

        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"until must be unix seconds or RFC 3339, got {value!r}") from exc
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    raise ValueError(f"until must be unix seconds or RFC 3339, got {value!r}")


@dataclass
class Fault:
    """One injected fault: a matcher, an action and a budget.

    Matcher: ``method``, ``path`` (a glob on the request path; for webhook faults, on the
    receiver URL or its path) and ``operation`` (an operationId such as
    ``predictions.create``, see :data:`OPERATIONS`). Unset parts match everything.

    Actions: ``status`` (+ ``body``, ``headers``, ``retry_after`` for 429), ``delay_ms``
    (alone or before another action), ``drop`` (close the socket with no response),
    ``drop_response`` (handle the request, then close the socket instead of answering: the
    server acted but the client never learns it, as when an answer is lost on the way back),
    ``hang`` (hold the connection until the client gives up; at most ``hang_ms``),
    ``sse_drop_after`` (close an event stream after K events, without ``done``),
    ``webhook_fail`` (the server's webhook deliveries get this status), ``webhook_drop``
    (the delivery fails with a connection error), ``webhook_hang`` (the delivery times out
    after ``hang_ms``, default the sender's timeout).

    Budget: ``times`` (uses before it is removed), ``probability`` (chance of applying to
    each matching request), ``until`` (unix seconds or RFC 3339 on the server's clock).
    """

    method: str | None = None
    path: str | None = None
    operation: str | None = None
    status: int | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: int | None = None
    delay_ms: int | None = None
    drop: bool = False
    drop_response: bool = False
    hang: bool = False
    hang_ms: int | None = None
    sse_drop_after: int | None = None
    webhook_fail: int | None = None
    webhook_drop: bool = False
    webhook_hang: bool = False
    times: int | None = None
    probability: float | None = None
    until: float | str | None = None
    id: int = 0
    hits: int = 0

    def __post_init__(self) -> None:
        if self.operation is not None and self.operation not in OPERATIONS:
            raise ValueError(
                f"operation: unknown operationId {self.operation!r} (known: {', '.join(sorted(OPERATIONS))})"
            )
        if self.status is not None and not (
            isinstance(self.status, int) and 100 <= self.status <= 599
        ):
            raise ValueError(f"status must be an HTTP status code, got {self.status!r}")
        if self.webhook_fail is not None and not (
            isinstance(self.webhook_fail, int) and 100 <= self.webhook_fail <= 599
        ):
            raise ValueError(f"webhook_fail must be an HTTP status code, got {self.webhook_fail!r}")
        for name, low, top in _INT_FIELDS:
            v = getattr(self, name)
            if v is not None and (
                not isinstance(v, int) or isinstance(v, bool) or not low <= v <= top
            ):
                raise ValueError(f"{name} must be an integer from {low} to {top}, got {v!r}")
        if self.probability is not None:
            self.probability = number(self.probability, "probability", minimum=0, maximum=1)
        for name in ("drop", "drop_response", "hang", "webhook_drop", "webhook_hang"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a boolean, got {getattr(self, name)!r}")
        for name in ("method", "path", "operation"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise ValueError(f"{name} must be a string, got {v!r}")
        if self.body is not None and not isinstance(self.body, dict):
            raise ValueError(f"body must be an object, got {self.body!r}")
        if not isinstance(self.headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and _header_ok(k, v)
            for k, v in self.headers.items()
        ):
            raise ValueError("headers must map header names to printable ASCII strings")
        if self.until is not None:
            self.until = parse_time(self.until)
        if sum((self.drop, self.hang, self.drop_response)) > 1:
            raise ValueError("a fault has one of drop, drop_response and hang")
        kinds = [k for k in ("http", "sse", "webhook") if self._has(k)]
        if not kinds:
            raise ValueError(
                "a fault needs an action: status, delay_ms, drop, hang, sse_drop_after, "
                "webhook_fail, webhook_drop or webhook_hang"
            )
        if len(kinds) > 1:
            raise ValueError(f"a fault has one kind of action, got {' and '.join(kinds)} actions")

    def _has(self, kind: str) -> bool:
        if kind == "sse":
            return self.sse_drop_after is not None
        if kind == "webhook":
            return self.webhook_fail is not None or self.webhook_drop or self.webhook_hang
        return (
            self.status is not None
            or self.delay_ms is not None
            or self.drop
            or self.drop_response
            or self.hang
        )

    @property
    def kind(self) -> str:
        """``http``, ``sse`` or ``webhook``."""
        return next(k for k in ("http", "sse", "webhook") if self._has(k))

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault's matcher selects a request (or, for webhooks, a receiver URL)."""
        if self.kind == "webhook":
            if self.path is None:
                return True
            target = urllib.parse.urlsplit(path).path or "/"
            return fnmatch.fnmatchcase(path, self.path) or fnmatch.fnmatchcase(target, self.path)
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.operation is not None:
            op_method, op_glob = OPERATIONS[self.operation]
            if op_method != method.upper() or not _glob_segments(path, op_glob):
                return False
        return not (self.path is not None and not fnmatch.fnmatchcase(path, self.path))

    def to_json(self) -> dict[str, Any]:
        """JSON form (with ``kind``)."""
        out = asdict(self)
        out["kind"] = self.kind
        return out


def _glob_segments(path: str, glob: str) -> bool:
    """``*`` matches exactly one path segment (so ``/v1/models/*/*`` is not ``.../versions``)."""
    a, b = path.rstrip("/").split("/"), glob.split("/")
    return len(a) == len(b) and all(g == "*" or g == s for s, g in zip(a, b, strict=True))


class RateLimiter:
    """Emulation of the real rate limits (off by default): token buckets per category.

    Prediction creates get ``create_per_minute`` (600 on the real API), everything else under
    ``/v1`` ``other_per_minute`` (3000); each bucket holds up to ``burst`` requests (default:
    the per-minute rate) and refills continuously on the server's (virtual) clock, so
    ``advance_clock`` refills it instantly.
    """

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self.now = now
        self.enabled = False
        self.create_per_minute = 600
        self.other_per_minute = 3000
        self.burst: int | None = None
        self._tokens: dict[str, float] = {}
        self._stamp: dict[str, float] = {}

    def configure(self, value: Any) -> None:
        """Apply ``true``/``false`` or ``{"enabled", "create_per_minute", "other_per_minute", "burst"}``."""
        if isinstance(value, bool):
            value = {"enabled": value}
        if not isinstance(value, dict):
            raise ValueError("rate_limits must be a boolean or an object")
        known = {"enabled", "create_per_minute", "other_per_minute", "burst"}
        if set(value) - known:
            raise ValueError(
                f"rate_limits: unknown field(s) {', '.join(sorted(set(value) - known))}"
                f" (known: {', '.join(sorted(known))})"
            )
        for key in ("create_per_minute", "other_per_minute", "burst"):
            v = value.get(key)
            if v is not None and (
                not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 1_000_000_000
            ):
                raise ValueError(
                    f"rate_limits.{key} must be an integer from 1 to 1000000000, got {v!r}"
                )
        if not isinstance(value.get("enabled", True), bool):
            raise ValueError("rate_limits.enabled must be a boolean")
        with self._lock:
            self.enabled = bool(value.get("enabled", True))
            self.create_per_minute = value.get("create_per_minute", self.create_per_minute)
            self.other_per_minute = value.get("other_per_minute", self.other_per_minute)
            if "burst" in value:
                self.burst = value["burst"]
            self._tokens.clear()
            self._stamp.clear()

    def settings(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "enabled": self.enabled,
            "create_per_minute": self.create_per_minute,
            "other_per_minute": self.other_per_minute,
            "burst": self.burst,
        }

    def take(self, is_create: bool) -> tuple[bool, int, int] | None:
        """Spend one request: ``(allowed, remaining, reset seconds)``, or None when off."""
        if not self.enabled:
            return None
        key = "create" if is_create else "other"
        rate = (self.create_per_minute if is_create else self.other_per_minute) / 60.0
        with self._lock:
            cap = float(
                self.burst or (self.create_per_minute if is_create else self.other_per_minute)
            )
            now = self.now()
            tokens = self._tokens.get(key, cap)
            last = self._stamp.get(key, now)
            tokens = min(cap, tokens + max(0.0, now - last) * rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._tokens[key] = tokens
            self._stamp[key] = now
            reset = max(1, int(-(-(1.0 - tokens) // rate))) if tokens < 1.0 else 1
            return allowed, int(tokens), reset


class Faults:
    """Faults applied in creation order until their budget runs out.

    ``now`` is the clock used for ``until`` (the server's virtual clock once wired).
    ``rate_limit`` is the rate-limit emulation consulted by the same middleware.
    """

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next = 1
        self._now = now
        self._rng = random.Random()
        self.rate_limit = RateLimiter(now)

    @property
    def now(self) -> Callable[[], float]:
        """The clock for ``until`` and rate windows."""
        return self._now

    @now.setter
    def now(self, value: Callable[[], float]) -> None:
        self._now = value
        self.rate_limit.now = value

    @property
    def active(self) -> bool:
        """Whether any fault is set (expired ones included): False lets requests skip the lookup."""
        return bool(self._faults)

    def add(self, **kwargs: Any) -> Fault:
        """Add a fault; keyword arguments are :class:`Fault` fields. Raises ValueError/TypeError."""
        for key in ("id", "hits", "kind"):
            kwargs.pop(key, None)
        fault = Fault(**kwargs)
        with self._lock:
            if len(self._faults) >= MAX_FAULTS:
                raise ValueError(f"too many faults (at most {MAX_FAULTS} at once)")
            fault.id = self._next
            self._next += 1
            self._faults.append(fault)
        return fault

    def list(self) -> list[Fault]:
        """Active faults (expired ones are dropped)."""
        with self._lock:
            self._expire()
            return list(self._faults)

    def remove(self, fault_id: int) -> bool:
        """Remove one fault by id; False if there is none."""
        with self._lock:
            for f in self._faults:
                if f.id == fault_id:
                    self._faults.remove(f)
                    return True
        return False

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def _expire(self) -> None:
        now = self.now()
        self._faults[:] = [f for f in self._faults if f.until is None or now < float(f.until)]

    def take(
        self, method: str, path: str, *, sse: bool = False, kind: str | None = None
    ) -> Fault | None:
        """The first matching fault of a kind (``http``, ``sse``, ``webhook``), using its budget."""
        want = kind or ("sse" if sse else "http")
        with self._lock:
            self._expire()
            for f in self._faults:
                if f.kind != want or not f.matches(method, path):
                    continue
                if f.probability is not None and self._rng.random() >= float(f.probability):
                    continue
                f.hits += 1
                if f.times is not None and f.hits >= f.times:
                    self._faults.remove(f)
                return f
        return None


# ---------------------------------------------------------------------------- scripted outcomes


@dataclass
class Outcome:
    """What the next prediction of a model does instead of (or besides) running the model.

    - ``hold``: the prediction is held before it starts (``starting``) until released.
    - ``logs``: log lines written before the result.
    - ``output``: succeed with this output without calling the model (a list on an
      iterator model is emitted chunk by chunk).
    - ``error``: fail with this error without calling the model.
    - ``manual``: do not call the model; the prediction stays ``processing`` until the test
      emits, completes, fails or cancels it.

    With none of ``output``/``error``/``manual`` the model runs as usual.
    """

    hold: bool = False
    logs: list[str] = field(default_factory=list)
    output: Any = None
    has_output: bool = False
    error: str | None = None
    manual: bool = False

    @classmethod
    def parse(cls, value: Any) -> Outcome:
        """An outcome from its JSON form; raises ValueError naming the bad field."""
        if not isinstance(value, dict):
            raise ValueError(f"an outcome must be an object, got {value!r}")
        known = {"hold", "logs", "output", "error", "manual"}
        extra = set(value) - known
        if extra:
            raise ValueError(
                f"outcome: unknown field(s) {', '.join(sorted(extra))} (known: {', '.join(sorted(known))})"
            )
        logs = value.get("logs", [])
        if isinstance(logs, str):
            logs = logs.splitlines()
        if not isinstance(logs, list) or not all(isinstance(x, str) for x in logs):
            raise ValueError("outcome.logs must be a string or a list of strings")
        error = value.get("error")
        if error is not None and not isinstance(error, str):
            raise ValueError("outcome.error must be a string")
        if error is not None and "output" in value:
            raise ValueError("an outcome has either output or error, not both")
        for key in ("hold", "manual"):
            if not isinstance(value.get(key, False), bool):
                raise ValueError(f"outcome.{key} must be a boolean")
        if value.get("manual") and (error is not None or "output" in value):
            raise ValueError("a manual outcome has no output or error (complete/fail it instead)")
        return cls(
            hold=bool(value.get("hold", False)),
            logs=list(logs),
            output=value.get("output"),
            has_output="output" in value,
            error=error,
            manual=bool(value.get("manual", False)),
        )

    @property
    def replaces_model(self) -> bool:
        """Whether the model is not called."""
        return self.manual or self.has_output or self.error is not None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {"hold": self.hold, "manual": self.manual, "logs": self.logs}
        if self.has_output:
            out["output"] = self.output
        if self.error is not None:
            out["error"] = self.error
        return out


#: Most scripted outcomes queued for one model.
MAX_SCRIPTED = 10_000


class Scripts:
    """Queued outcomes per model (``owner/name``), consumed one per new prediction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Outcome]] = {}

    def add(self, model: str, outcomes: list[Outcome]) -> int:
        """Queue outcomes for the next predictions of ``model``; returns how many are queued.

        ValueError beyond :data:`MAX_SCRIPTED` outcomes queued for a model.
        """
        with self._lock:
            q = self._queues.setdefault(model, deque())
            if len(q) + len(outcomes) > MAX_SCRIPTED:
                if not q:
                    del self._queues[model]
                raise ValueError(f"at most {MAX_SCRIPTED} outcomes may be queued for a model")
            q.extend(outcomes)
            return len(q)

    def pop(self, model: str) -> Outcome | None:
        """The next outcome for a new prediction of ``model``, if any."""
        with self._lock:
            q = self._queues.get(model)
            if not q:
                return None
            out = q.popleft()
            if not q:
                del self._queues[model]
            return out

    def pending(self, model: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Outcomes not consumed yet, per model."""
        with self._lock:
            return {
                m: [o.to_json() for o in q]
                for m, q in self._queues.items()
                if model is None or m == model
            }

    def clear(self, model: str | None = None) -> None:
        """Forget queued outcomes (of one model, or all)."""
        with self._lock:
            if model is None:
                self._queues.clear()
            else:
                self._queues.pop(model, None)


# ---------------------------------------------------------------------------- request log


#: Most requests the log keeps (the oldest go first).
REQUEST_LOG_ENTRIES = 1000
#: Longest path, query string or header value kept in a log entry (characters).
REQUEST_LOG_FIELD = 2048


class RequestLog:
    """Recent requests: method, path, chosen headers, status and timing (never tokens).

    Bounded: a ring of ``maxlen`` entries (default :data:`REQUEST_LOG_ENTRIES`), each with its
    path, query and header values cut to :data:`REQUEST_LOG_FIELD` characters (a cut value
    ends with ``...``). The app records requests only when the test controls are on.
    """

    def __init__(self, maxlen: int = REQUEST_LOG_ENTRIES) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        """Record one request (long fields are cut in place)."""
        for key in ("path", "query"):
            if isinstance(entry.get(key), str):
                entry[key] = _cut(entry[key])
        if isinstance(entry.get("headers"), dict):
            entry["headers"] = {k: _cut(v) for k, v in entry["headers"].items()}
        with self._lock:
            self._entries.append(entry)

    def list(self) -> list[dict[str, Any]]:
        """Every recorded request, oldest first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()

    @staticmethod
    def now() -> float:
        """Timestamp for entries."""
        return time.time()


def _cut(value: str, limit: int = REQUEST_LOG_FIELD) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


# ---------------------------------------------------------------------------- drop / hang


def _find_cycle(send: Any, depth: int = 0) -> Any:
    """The server's per-request object behind an ASGI ``send`` (uvicorn: ``transport``)."""
    if depth > 6 or send is None:
        return None
    owner = getattr(send, "__self__", None)
    if owner is not None and hasattr(owner, "transport"):
        return owner
    for cell in getattr(send, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if callable(value):
            found = _find_cycle(value, depth + 1)
            if found is not None:
                return found
    return None


async def drop_connection(send: Any) -> None:
    """Close the client's connection without sending a response.

    Under uvicorn the socket is closed outright, so the client sees the connection end with
    no status line. Elsewhere the best available stand-in is a response head followed by a
    reset.
    """
    cycle = _find_cycle(send)
    if cycle is not None:
        cycle.disconnected = True
        if hasattr(cycle, "keep_alive"):
            cycle.keep_alive = False
        cycle.transport.close()
        return
    await send({"type": "http.response.start", "status": 500, "headers": []})
    raise ConnectionAbortedError("injected drop")


async def hang_connection(receive: Any, send: Any, seconds: float | None) -> None:
    """Hold the request until the client disconnects (or ``seconds`` pass), then drop it."""
    limit = MAX_HANG if seconds is None else max(0.0, seconds)

    async def wait_disconnect() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    try:
        await asyncio.wait_for(wait_disconnect(), limit)
    except asyncio.TimeoutError:
        pass
    await drop_connection(send)
