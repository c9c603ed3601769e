"""Webhook delivery: a durable outbox in SQLite, Standard Webhooks signing, throttling, retries.

Self-contained: it needs a database object with ``execute``/``query``/``one``/
``executescript`` (see ``store.Store``) and the ``whsec_...`` secret.

- ``start`` and ``completed`` are never throttled; ``output``/``logs`` deliveries for one
  prediction go out at most once per ``throttle`` seconds, and pending ones coalesce into
  the latest snapshot. ``completed`` drops a pending update and is always last.
- Deliveries for one prediction go out in order; a message waits while an earlier one is
  retried. Retries keep the ``webhook-id``; each attempt is signed afresh.
- Fairness: at most ``per_receiver`` attempts are in flight per receiver
  (``scheme://host:port``) and ``workers`` in all, so receivers that hang or refuse only
  use their own share and never delay the others' deliveries.
- Bounds: at most ``max_pending`` undelivered messages per receiver (newer ones are
  dropped with a warning); in-flight attempts are bounded by ``workers``; per-prediction
  throttle state is dropped when its ``completed`` message is done.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

log = logging.getLogger("replicate.local.webhooks")

DEFAULT_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
ALL_EVENTS = ("start", "output", "logs", "completed")
UPDATE_EVENTS = ("output", "logs")

_TABLES = """
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, msg_id TEXT NOT NULL, prediction_id TEXT NOT NULL,
    url TEXT NOT NULL, event TEXT NOT NULL, body BLOB NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_outbox_state ON webhook_outbox (state, id);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, msg_id TEXT NOT NULL, prediction_id TEXT NOT NULL,
    url TEXT NOT NULL, event TEXT NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL,
    status INTEGER, error TEXT, latency REAL NOT NULL, t REAL NOT NULL, sent_at REAL
);
"""


def receiver_key(url: str) -> str:
    """The receiver a URL names, for fairness: ``scheme://host:port``."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"
    except ValueError:
        return url


class Database(Protocol):
    """What the webhook sender needs from the database."""

    def execute(self, sql: str, params: Any = ()) -> int: ...
    def executescript(self, sql: str) -> None: ...
    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]: ...
    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None: ...


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64 HMAC-SHA256>``)."""
    key = base64.b64decode(secret.split("_", 1)[1] if secret.startswith("whsec_") else secret)
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class WebhookSender:
    """Queues, signs and delivers webhooks from a durable outbox."""

    def __init__(
        self,
        db: Database,
        secret: str,
        *,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        backoff_scale: float = 1.0,
        throttle: float = 0.5,
        timeout: float = 10.0,
        workers: int = 16,
        per_receiver: int = 2,
        max_pending: int = 10_000,
        time_fn: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.secret = secret
        self.backoff = tuple(backoff)
        self.backoff_scale = backoff_scale
        self.throttle = throttle
        self.timeout = timeout
        self.time = time_fn
        self.forced_status: int | None = None  # test control: fail every delivery with this status
        # Test control: called with the receiver URL before each attempt; may return a fault
        # with ``webhook_fail`` (status), ``webhook_drop`` or ``webhook_hang`` (+ ``hang_ms``).
        self.fault_hook: Callable[[str], Any] | None = None
        # Called with the receiver URL before each attempt: a reason to refuse it (the
        # server's own /_local controls) or None.
        self.refuse: Callable[[str], str | None] | None = None
        self.workers = workers
        self.per_receiver = per_receiver
        self.max_pending = max_pending
        self._hang_stop = threading.Event()
        self._cond = threading.Condition()
        self._inflight: set[str] = set()
        self._by_receiver: dict[str, int] = {}  # attempts in flight per receiver
        self._last_update: dict[str, float] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="replicate-local-webhook"
        )
        self._client: Any = None
        db.executescript(_TABLES)
        cols = {r["name"] for r in db.query("PRAGMA table_info(webhook_attempts)")}
        if "sent_at" not in cols:
            db.execute("ALTER TABLE webhook_attempts ADD COLUMN sent_at REAL")

    # ------------------------------------------------------------------ queueing
    def enqueue(
        self,
        prediction_id: str,
        url: str,
        event: str,
        body: bytes,
        events_filter: Sequence[str] | None = None,
    ) -> None:
        """Queue a delivery of ``body`` for ``event`` (skipped if filtered out)."""
        if event not in ALL_EVENTS:
            raise ValueError(f"unknown webhook event {event!r}")
        if events_filter is not None and event not in events_filter:
            return
        now = self.time()
        with self._cond:
            if event in UPDATE_EVENTS:
                row = self.db.one(
                    "SELECT id FROM webhook_outbox WHERE prediction_id = ? AND state = 'pending' "
                    "AND event IN ('output', 'logs') AND attempts = 0 ORDER BY id DESC LIMIT 1",
                    (prediction_id,),
                )
                if row is not None:
                    self.db.execute(
                        "UPDATE webhook_outbox SET body = ?, event = ? WHERE id = ?",
                        (body, event, row["id"]),
                    )
                    self._cond.notify_all()
                    return
            elif event == "completed":
                self.db.execute(
                    "UPDATE webhook_outbox SET state = 'dropped' WHERE prediction_id = ? AND state = 'pending' "
                    "AND event IN ('output', 'logs') AND attempts = 0",
                    (prediction_id,),
                )
            pending = self.db.one(
                "SELECT COUNT(*) AS n FROM webhook_outbox WHERE url = ? AND state = 'pending'",
                (url,),
            )
            state = "pending"
            if pending is not None and pending["n"] >= self.max_pending:
                log.warning(
                    "webhook receiver %s has %d undelivered messages; dropping a %s message",
                    receiver_key(url),
                    pending["n"],
                    event,
                )
                state = "dropped"
            self.db.execute(
                "INSERT INTO webhook_outbox (msg_id, prediction_id, url, event, body, state, attempts, "
                "next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                ("msg_" + secrets.token_hex(13), prediction_id, url, event, body, state, now, now),
            )
            self._cond.notify_all()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start delivering (pending messages from a previous run resume)."""
        import httpx

        self.db.execute("UPDATE webhook_outbox SET state = 'pending' WHERE state = 'inflight'")
        self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
        self._thread = threading.Thread(
            target=self._loop, name="replicate-local-webhooks", daemon=True
        )
        self._thread.start()

    def stop(self, drain: float = 5.0) -> None:
        """Spend up to ``drain`` seconds on due deliveries, then stop."""
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline and self._has_due_work():
            time.sleep(0.05)
        self._hang_stop.set()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._client is not None:
            self._client.close()

    def _has_due_work(self) -> bool:
        with self._cond:
            if self._inflight:
                return True
        row = self.db.one(
            "SELECT COUNT(*) AS n FROM webhook_outbox WHERE state = 'pending' AND attempts = 0"
        )
        return bool(row and row["n"])

    def kick(self) -> None:
        """Re-evaluate due deliveries now."""
        with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------------ delivery
    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                wait = self._schedule()
                self._cond.wait(timeout=wait)

    def _schedule(self) -> float:
        """Submit due messages (first pending per prediction, within each receiver's share
        and the total); returns seconds to wait."""
        rows = self.db.query(
            "SELECT id, prediction_id, url, event, attempts, next_attempt_at FROM webhook_outbox "
            "WHERE state = 'pending' ORDER BY id"
        )
        now = self.time()
        seen: set[str] = set()
        wait = 1.0
        for row in rows:
            if sum(self._by_receiver.values()) >= self.workers:
                break
            pid = row["prediction_id"]
            if pid in seen or pid in self._inflight:
                seen.add(pid)
                continue
            seen.add(pid)
            due = row["next_attempt_at"]
            if row["event"] in UPDATE_EVENTS and pid in self._last_update:
                due = max(due, self._last_update[pid] + self.throttle)
            if due > now:
                wait = min(wait, due - now)
                continue
            key = receiver_key(row["url"])
            if self._by_receiver.get(key, 0) >= self.per_receiver:
                continue  # this receiver's share is in use: others go first
            self.db.execute(
                "UPDATE webhook_outbox SET state = 'inflight' WHERE id = ?", (row["id"],)
            )
            self._inflight.add(pid)
            self._by_receiver[key] = self._by_receiver.get(key, 0) + 1
            self._pool.submit(self._attempt, row["id"])
        return max(0.005, wait)

    def _attempt(self, outbox_id: int) -> None:
        row = self.db.one("SELECT * FROM webhook_outbox WHERE id = ?", (outbox_id,))
        if row is None:
            return
        try:
            self._deliver(outbox_id, row)
        finally:
            key = receiver_key(row["url"])
            with self._cond:
                self._inflight.discard(row["prediction_id"])
                n = self._by_receiver.get(key, 1) - 1
                if n > 0:
                    self._by_receiver[key] = n
                else:
                    self._by_receiver.pop(key, None)
                self._cond.notify_all()

    def _deliver(self, outbox_id: int, row: dict[str, Any]) -> None:
        body = bytes(row["body"])
        sent_at = self.time()
        if row["event"] in UPDATE_EVENTS:
            # The throttle counts from the moment an update really goes out.
            with self._cond:
                self._last_update[row["prediction_id"]] = sent_at
        ts = int(sent_at)
        headers = {
            "content-type": "application/json",
            "user-agent": "replicate-local-webhook/1",
            "webhook-id": row["msg_id"],
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(self.secret, row["msg_id"], ts, body),
        }
        status: int | None = None
        error: str | None = None
        started = time.monotonic()
        fault = self.fault_hook(row["url"]) if self.fault_hook is not None else None
        refused = self.refuse(row["url"]) if self.refuse is not None else None
        try:
            if refused is not None:
                error = refused
            elif self.forced_status is not None:
                status = self.forced_status
            elif fault is not None:
                status = self._injected(fault)
            else:
                resp = self._client.post(row["url"], content=body, headers=headers)
                status = resp.status_code
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        latency = time.monotonic() - started
        ok = status is not None and 200 <= status < 300
        self.db.execute(
            "INSERT INTO webhook_attempts (msg_id, prediction_id, url, event, headers, body, status, error, "
            "latency, t, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["msg_id"],
                row["prediction_id"],
                row["url"],
                row["event"],
                json.dumps(headers),
                body,
                status,
                error,
                latency,
                self.time(),
                sent_at,
            ),
        )
        attempts = row["attempts"] + 1
        if ok:
            self.db.execute(
                "UPDATE webhook_outbox SET state = 'delivered', attempts = ? WHERE id = ? "
                "AND state = 'inflight'",
                (attempts, outbox_id),
            )
        elif attempts > len(self.backoff) or refused is not None:
            log.warning(
                "webhook %s to %s failed after %d attempts", row["msg_id"], row["url"], attempts
            )
            self.db.execute(
                "UPDATE webhook_outbox SET state = 'failed', attempts = ? WHERE id = ? "
                "AND state = 'inflight'",
                (attempts, outbox_id),
            )
        else:
            delay = self.backoff[attempts - 1] * self.backoff_scale
            self.db.execute(
                "UPDATE webhook_outbox SET state = 'pending', attempts = ?, next_attempt_at = ? "
                "WHERE id = ? AND state = 'inflight'",
                (attempts, self.time() + delay, outbox_id),
            )
        if row["event"] == "completed":
            with self._cond:
                self._last_update.pop(row["prediction_id"], None)

    def _injected(self, fault: Any) -> int:
        """Play an injected receiver failure: a status, or raise like a dead/hung receiver."""
        if getattr(fault, "webhook_fail", None) is not None:
            return int(fault.webhook_fail)
        if getattr(fault, "webhook_hang", False):
            hang = fault.hang_ms / 1000 if fault.hang_ms is not None else self.timeout
            self._hang_stop.wait(min(hang, self.timeout))
            raise TimeoutError(f"the receiver did not answer within {self.timeout:g} s (injected)")
        raise ConnectionResetError("the receiver closed the connection (injected)")

    # ------------------------------------------------------------------ inspection
    def attempts(self, prediction_id: str | None = None) -> list[dict[str, Any]]:
        """Every delivery attempt (oldest first), with decoded headers and body."""
        if prediction_id is None:
            rows = self.db.query("SELECT * FROM webhook_attempts ORDER BY id")
        else:
            rows = self.db.query(
                "SELECT * FROM webhook_attempts WHERE prediction_id = ? ORDER BY id",
                (prediction_id,),
            )
        for r in rows:
            r["headers"] = json.loads(r["headers"])
            r["body"] = bytes(r["body"]).decode()
        return rows

    def remove_data(self, prediction_id: str) -> None:
        """Data removal: drop a prediction's bodies (they hold its input, output and logs)
        from the outbox and the attempt log; undelivered messages are dropped."""
        self.db.execute(
            "UPDATE webhook_outbox SET body = x'', state = CASE WHEN state IN ('pending', "
            "'inflight') THEN 'dropped' ELSE state END WHERE prediction_id = ?",
            (prediction_id,),
        )
        self.db.execute(
            "UPDATE webhook_attempts SET body = x'' WHERE prediction_id = ?", (prediction_id,)
        )

    def outbox(self) -> list[dict[str, Any]]:
        """Outbox rows (without bodies)."""
        return self.db.query(
            "SELECT id, msg_id, prediction_id, url, event, state, attempts, next_attempt_at FROM webhook_outbox ORDER BY id"
        )
