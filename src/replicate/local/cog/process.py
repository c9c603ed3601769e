"""The process side of a Cog worker: one ``cog.server.http`` runtime and its supervision.

The runtime (Cog 0.23's ``coglet``) runs on a free loopback port, started lazily, watched
by ``supervise.py`` so it never outlives the server, stopped when idle, restarted with
backoff after a crash. :class:`RuntimeProcess` owns all of that; :class:`~.worker.CogWorker`
adds the predictions on top.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import httpx

from .callbacks import CallbackServer, safe_filename
from .errors import CogSetupError
from .events import Run
from .model import CogModel
from .stage import prepare_stage, runtime_command, runtime_env

__all__ = ["RuntimeProcess", "WorkerState"]


class _SetupFailed(Exception):
    """Setup failed or timed out (``exited``: the process ended during setup)."""

    def __init__(self, message: str, runtime_logs: str, *, exited: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.runtime_logs = runtime_logs
        self.exited = exited


class _PortTaken(Exception):
    """The runtime exited because its port was taken between choosing and binding it."""


WorkerState = Literal["stopped", "starting", "ready", "setup_failed"]


class RuntimeProcess:
    """One Cog runtime process for one model version: start, health, idle stop, shutdown.

    The base of :class:`~.worker.CogWorker` (whose docstring describes the options). It
    keeps the in-flight runs only to tell them when the process stopped or crashed.
    """

    def __init__(
        self,
        model: CogModel,
        *,
        idle_timeout: float | None = 600.0,
        setup_timeout: float = 300.0,
        cancel_grace: float = 10.0,
        setup_retry_after: float = 30.0,
        weights: str | None = None,
        weights_env: Callable[[str], Mapping[str, str]] | None = None,
        work_dir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        on_stop: Callable[[Any], None] | None = None,
        record_setup: bool = True,
        file_outputs: Literal["auto", "upload", "inline"] = "auto",
        restart_backoff: float = 1.0,
        mode: Literal["predict", "train"] = "predict",
    ) -> None:
        if mode not in ("predict", "train"):
            raise ValueError("mode must be 'predict' or 'train'")
        if mode == "train" and model.train_ref is None:
            raise ValueError(f"{model.owner_name} has no 'train' entry in cog.yaml")
        self.model = model
        self.mode = mode
        self.idle_timeout = idle_timeout
        self.setup_timeout = setup_timeout
        self.cancel_grace = cancel_grace
        self.setup_retry_after = setup_retry_after
        self.weights = weights
        self.weights_env = weights_env
        self.extra_env = dict(env or {})
        self.on_stop = on_stop
        self.record_setup = record_setup
        if file_outputs not in ("auto", "upload", "inline"):
            raise ValueError("file_outputs must be 'auto', 'upload' or 'inline'")
        self.file_outputs = file_outputs
        self.restart_backoff = restart_backoff
        self.crashes = 0  #: crashes since the last successful prediction
        self._last_crash = 0.0
        self._own_work_dir = work_dir is None
        self._work_dir = Path(work_dir) if work_dir is not None else None
        self._lock = threading.RLock()
        self._start_lock = threading.Lock()
        self._state: WorkerState = "stopped"
        self._proc: subprocess.Popen[bytes] | None = None
        self._callbacks: CallbackServer | None = None
        self._http: httpx.Client | None = None
        self._base_url = ""
        self._runs: dict[str, Run] = {}
        self._active = 0
        self._last_used = time.monotonic()
        self._output: deque[str] = deque(maxlen=2000)
        self._setup_lines: list[str] = []
        self._setup_error: CogSetupError | None = None
        self._setup_failed_at = 0.0
        self._generation = 0
        self._stopping = False
        self._stop_requested = False
        self._stopped_event = threading.Event()
        self._stopped_event.set()
        self._idle_cond = threading.Condition(self._lock)
        self.starts = 0  #: how many times a runtime process was started

    # ------------------------------------------------------------------ properties

    @property
    def version_id(self) -> str:
        """The model version this worker serves."""
        return self.model.version_id

    @property
    def state(self) -> WorkerState:
        """``stopped``, ``starting``, ``ready`` or ``setup_failed``."""
        return self._state

    @property
    def pid(self) -> int | None:
        """The runtime process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def base_url(self) -> str:
        """The runtime's loopback URL while it runs (for ``/openapi.json``, diagnostics)."""
        return self._base_url

    @property
    def output_tail(self) -> str:
        """The last lines the runtime process printed (diagnostics)."""
        return "\n".join(self._output)

    @property
    def output_schema(self) -> dict[str, Any]:
        """``Output`` (or ``TrainingOutput`` in train mode)."""
        return self.model.component("TrainingOutput" if self.mode == "train" else "Output")

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until the runtime process is not running; True if it stopped in time."""
        return self._stopped_event.wait(timeout)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the runtime (if needed) and wait until setup finished.

        Raises :class:`CogSetupError` with the setup logs when setup fails or times out.
        """
        with self._start_lock:
            with self._lock:
                stopping = self._stopping and self._proc is not None
            if stopping:
                # An idle stop or an eviction is under way: let it finish, then start afresh.
                self._stopped_event.wait(30.0)
            with self._lock:
                alive = self._proc is not None and self._proc.poll() is None
                if self._state == "ready" and alive and not self._stopping:
                    return
                if self._setup_error is not None:
                    if time.monotonic() - self._setup_failed_at < self.setup_retry_after:
                        raise self._setup_error
                    self._setup_error = None
            if self.crashes and self.restart_backoff > 0:
                # Restart after a crash with exponential backoff (1s, 2s, 4s... up to 30s).
                delay = min(self.restart_backoff * 2 ** (self.crashes - 1), 30.0)
                remaining = self._last_crash + delay - time.monotonic()
                if remaining > 0:
                    time.sleep(remaining)
            if not self.model.source_available():
                raise CogSetupError(
                    f"This version's source is no longer available ({self.model.directory} "
                    "is gone or holds different code)"
                )
            for attempt in range(3):
                try:
                    self._spawn_and_wait()
                    return
                except _PortTaken:
                    if attempt == 2:
                        raise CogSetupError(
                            "The Cog runtime could not bind a loopback port", self.output_tail
                        ) from None

    def _spawn_and_wait(self) -> None:
        model = self.model
        with self._lock:
            self._state = "starting"
            self._stopping = False
            self._stop_requested = False
            self._stopped_event.clear()
            self._generation += 1
            generation = self._generation
            self._setup_lines = []
            self._output.clear()
        try:
            if self._work_dir is None:
                self._work_dir = Path(tempfile.mkdtemp(prefix="replicate-cog-"))
            stage = self._work_dir / f"stage-{model.version_id[:16]}-{self.mode}"
            ref = model.train_ref if self.mode == "train" else model.predict_ref
            assert ref is not None
            entry = prepare_stage(stage, model, ref, record_setup=self.record_setup)
            setup_log = self._work_dir / "setup.log"
            with contextlib.suppress(FileNotFoundError):
                setup_log.unlink()
            callbacks = CallbackServer(
                self._on_webhook, self._work_dir / "outputs", name=model.owner_name
            )
        except OSError as exc:
            with self._lock:
                self._state = "stopped"
                self._stopped_event.set()
            raise CogSetupError(f"Could not prepare the model's worker: {exc}") from exc
        port = _free_port()
        env = runtime_env(
            model,
            self.mode,
            port=port,
            entry=stage / entry,
            setup_log=setup_log,
            weights=self.weights or model.weights,
            extra=self.extra_env,
        )
        if self.weights_env is not None and env.get("COG_WEIGHTS"):
            # e.g. the weights file as a URL the server serves, as the platform gives it
            env.update(self.weights_env(env["COG_WEIGHTS"]))
        posix = os.name == "posix"
        upload_url = callbacks.upload_url if self._uploads_files() else None
        cmd = runtime_command(model, self.mode, upload_url=upload_url, supervised=posix)
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=stage,
                env=env,
                stdin=subprocess.PIPE if posix else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=posix,
            )
        except OSError as exc:
            callbacks.close()
            with self._lock:
                self._state = "stopped"
                self._stopped_event.set()
            raise CogSetupError(f"Could not start the Cog runtime ({model.python}): {exc}") from exc
        with self._lock:
            self._proc = proc
            self._callbacks = callbacks
            self._base_url = f"http://127.0.0.1:{port}"
            self._http = httpx.Client(
                base_url=self._base_url, timeout=httpx.Timeout(30.0, connect=5.0)
            )
            self.starts += 1
        pump = threading.Thread(
            target=self._pump_output,
            args=(proc,),
            daemon=True,
            name=f"cog-output-{model.owner_name}",
        )
        pump.start()
        threading.Thread(
            target=self._watch_process,
            args=(proc, generation),
            daemon=True,
            name=f"cog-watch-{model.owner_name}",
        ).start()
        try:
            self._wait_ready(proc, self._http)
        except _SetupFailed as failed:
            # Stop the process first so every line it printed has been read.
            self._shutdown_process(graceful=True)
            pump.join(5.0)
            if failed.exited and "address already in use" in self.output_tail.lower():
                raise _PortTaken() from None
            if self._stop_requested:
                # stop() during setup: not a setup failure worth remembering.
                with self._lock:
                    self._state = "stopped"
                raise CogSetupError("The model worker was stopped during setup") from None
            error = CogSetupError(failed.message, self._setup_logs(failed.runtime_logs, setup_log))
            with self._lock:
                self._setup_error = error
                self._setup_failed_at = time.monotonic()
                self._state = "setup_failed"
            raise error from None
        with self._lock:
            self._state = "ready"
            self._last_used = time.monotonic()
        if self.idle_timeout is not None:
            threading.Thread(
                target=self._idle_reaper,
                args=(generation,),
                daemon=True,
                name=f"cog-idle-{model.owner_name}",
            ).start()

    def _uploads_files(self) -> bool:
        """Whether the runtime uploads file outputs to us (else it inlines ``data:`` URIs).

        Uploads keep the model's filenames, but Cog 0.23 orders a list of uploaded files by
        upload completion, so ``auto`` inlines outputs that are arrays of files (their
        order then matches the model's) and uploads everything else.
        """
        if self.file_outputs != "auto":
            return self.file_outputs == "upload"
        out = self.output_schema
        items = out.get("items") if out.get("type") == "array" else None
        return not (isinstance(items, dict) and items.get("format") == "uri")

    def _wait_ready(self, proc: subprocess.Popen[bytes], client: httpx.Client | None) -> None:
        """Poll ``/health-check`` until READY; raise :class:`_SetupFailed` otherwise."""
        deadline = time.monotonic() + self.setup_timeout
        delay = 0.02
        while True:
            if proc.poll() is not None or client is None:
                code = proc.poll()
                raise _SetupFailed(
                    f"The Cog runtime exited during setup (exit status {code})", "", exited=True
                )
            try:
                resp = client.get("/health-check", timeout=2.0)
                health = resp.json() if resp.status_code == 200 else {}
            except (httpx.HTTPError, ValueError, RuntimeError):
                health = {}
            status = health.get("status") if isinstance(health, dict) else None
            if status in ("READY", "BUSY"):
                return
            if status in ("SETUP_FAILED", "DEFUNCT"):
                setup = health.get("setup") or {}
                raw = str(setup.get("logs") or "").strip()
                raise _SetupFailed(_setup_error_message(raw, status), raw)
            if time.monotonic() > deadline:
                raise _SetupFailed(f"Model setup did not finish within {self.setup_timeout:g}s", "")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def _setup_logs(self, runtime_logs: str, setup_log: Path | None = None) -> str:
        recorded = ""
        if setup_log is not None:
            with contextlib.suppress(OSError):
                recorded = setup_log.read_text(encoding="utf-8", errors="replace")
        lines = recorded.splitlines() if recorded.strip() else list(self._setup_lines)
        if runtime_logs and "Traceback (most recent call last)" not in recorded:
            lines.append(runtime_logs)
        elif not lines:
            lines = list(self._output)[-30:]
        return "\n".join(lines) + ("\n" if lines else "")

    def _pump_output(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self._output.append(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if record.get("target") == "coglet::setup":
                message = (record.get("fields") or {}).get("message")
                if isinstance(message, str) and not message.startswith(
                    "<string>:1: DeprecationWarning"
                ):
                    self._setup_lines.append(message)

    def _watch_process(self, proc: subprocess.Popen[bytes], generation: int) -> None:
        proc.wait()
        with self._lock:
            if generation != self._generation:
                return
            expected = self._stopping
            runs = list(self._runs.values())
            if self._state != "setup_failed":
                self._state = "stopped"
            if not expected:
                self.crashes += 1
                self._last_crash = time.monotonic()
            self._cleanup_locked()
        for run in runs:
            run.put("stopped" if expected else "crashed", proc.returncode)
        if self.on_stop is not None:
            with contextlib.suppress(Exception):
                self.on_stop(self)
        self._stopped_event.set()

    def _cleanup_locked(self) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._callbacks is not None:
            callbacks = self._callbacks
            self._callbacks = None
            threading.Thread(target=callbacks.close, daemon=True).start()
        self._proc = None
        self._base_url = ""

    def _idle_reaper(self, generation: int) -> None:
        assert self.idle_timeout is not None
        with self._idle_cond:
            while True:
                if generation != self._generation or self._state != "ready":
                    return
                idle_for = time.monotonic() - self._last_used
                if self._active == 0 and idle_for >= self.idle_timeout:
                    break
                wait = self.idle_timeout - idle_for if self._active == 0 else self.idle_timeout
                self._idle_cond.wait(max(wait, 0.01))
        self.stop(reason="idle", only_if_idle=True)

    def stop(
        self, timeout: float = 10.0, *, reason: str = "stop", only_if_idle: bool = False
    ) -> bool:
        """Stop the runtime process (running predictions end ``canceled`` or ``failed``).

        With ``only_if_idle`` nothing happens while predictions are running (the idle timer
        and the pool's eviction use this). Returns True if a process was stopped.
        """
        with self._lock:
            if self._proc is None:
                return False
            if only_if_idle and self._active:
                return False
            self._stopping = True
            self._stop_requested = True
            runs = list(self._runs.values())
        for run in runs:
            run.put("stopped", reason)
        self._shutdown_process(graceful=True, timeout=timeout)
        return True

    def _on_webhook(self, snapshot: dict[str, Any]) -> None:
        """A webhook from the runtime: hand the snapshot to its run (if it is still here)."""
        prediction_id = snapshot.get("id")
        with self._lock:
            run = self._runs.get(prediction_id) if isinstance(prediction_id, str) else None
        if run is not None:
            run.put("snapshot", snapshot)

    def discard_outputs(self, prediction_id: str) -> None:
        """Delete the :class:`CogFile` files of a prediction once the server stored them.

        Otherwise they stay until :meth:`close`.
        """
        if self._work_dir is not None:
            folder = self._work_dir / "outputs" / (safe_filename(prediction_id) or "unknown")
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Stop the runtime and delete the worker's temporary files."""
        self.stop()
        if self._own_work_dir and self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def _shutdown_process(self, *, graceful: bool, timeout: float = 10.0) -> None:
        with self._lock:
            proc = self._proc
            client = self._http
            self._stopping = True
        if proc is None:
            return
        if graceful and client is not None and proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                client.post("/shutdown", timeout=2.0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=min(timeout, 5.0))
        _kill_tree(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc, signal.SIGKILL)
            proc.wait()
        _kill_tree(proc, signal.SIGKILL)  # the runtime's own worker subprocess, if it lingers
        self._stopped_event.wait(timeout)

    # ------------------------------------------------------------------ predictions


# --------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kill_tree(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the runtime's whole process group (it spawns its own Python worker)."""
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        if os.name == "posix":
            os.killpg(proc.pid, sig)
        elif proc.poll() is None:
            proc.kill()


def _setup_error_message(raw: str, status: str) -> str:
    """``worker setup failed: ... setup failed: RuntimeError: boom`` -> a clean message."""
    last = raw.strip().splitlines()[-1] if raw.strip() else ""
    match = re.search(r"(?i)setup failed: (?!.*setup failed: )(.*)$", last)
    detail = match.group(1).strip() if match else last
    if not detail:
        detail = f"runtime reported {status}"
    return f"Model setup failed: {detail}"
