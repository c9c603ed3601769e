"""``replicate serve``: the local server's command line (``python -m replicate.local``)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
from typing import Any

from .gate import MAX_DEADLINE, duration, size
from .server import DEFAULT_TOKEN, _retention
from .util import REMOTE_CONTROLS_REFUSED, is_loopback


def build_parser(prog: str = "replicate serve") -> argparse.ArgumentParser:
    """The argument parser of ``replicate serve``."""
    p = argparse.ArgumentParser(
        prog=prog, description="Run a local Replicate-compatible API server."
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=5080, help="port (default 5080; 0 picks a free port)"
    )
    p.add_argument(
        "--db",
        default=None,
        help="SQLite database path, or :memory: (default: the user data directory)",
    )
    p.add_argument(
        "--token",
        action="append",
        default=None,
        metavar="[NAME=]TOKEN",
        help="accept only these tokens (repeatable); default: any non-empty token. Plain "
        "TOKEN values are all the same account (any of them reads and deletes the others' "
        "predictions and files); NAME=TOKEN gives account NAME, whose predictions, files, "
        "trainings, models and deployments other accounts cannot see (404)",
    )
    p.add_argument(
        "--test-controls",
        action="store_true",
        help="enable the /_local test controls (they need a --token value when tokens are set)",
    )
    p.add_argument(
        "--allow-remote-controls",
        action="store_true",
        help="allow --test-controls on a non-loopback --host (refused without this flag)",
    )
    p.add_argument(
        "--cancel-grace",
        default="10s",
        metavar="DURATION",
        help="how long a cancelled model that can stop (takes cancel_event, a generator or "
        "async) gets before the prediction is forced to canceled; its concurrency slot stays "
        "taken until its thread really ends (default 10s)",
    )
    p.add_argument(
        "--retention",
        default="1h",
        help="how long prediction data is kept after completion (e.g. 1h, or never)",
    )
    p.add_argument(
        "--webhook-secret", default=None, help="fixed webhook signing secret (whsec_...)"
    )
    p.add_argument(
        "--public-url", default=None, help="origin to use in URLs instead of the request's"
    )
    p.add_argument(
        "--stream-urls",
        choices=["iterator", "always"],
        default="iterator",
        help="give urls.stream to iterator models only (default) or to every prediction",
    )
    p.add_argument(
        "--max-run-time",
        default=None,
        help="default deadline for predictions created without Cancel-After (e.g. 10m)",
    )
    p.add_argument(
        "--sync-file-outputs",
        choices=["url", "data-uri"],
        default="url",
        help="file outputs in sync-mode (Prefer: wait) create replies: delivery URLs or data: URIs",
    )
    p.add_argument(
        "--max-body-size",
        default=None,
        metavar="SIZE",
        help="largest request body but uploads, e.g. 8MiB (default); larger ones get 413",
    )
    p.add_argument(
        "--no-demo-models", action="store_true", help="do not register the bundled demo models"
    )
    p.add_argument(
        "--cog",
        action="append",
        default=None,
        metavar="OWNER/NAME=DIR",
        help="serve the Cog model in DIR as OWNER/NAME (repeatable)",
    )
    p.add_argument(
        "--eager",
        action="store_true",
        help="start every Cog model's worker (and run its setup) before serving",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a locally generated CA (prints the SSL_CERT_FILE to trust)",
    )
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    return p


def _is_loopback(host: str) -> bool:
    return is_loopback(host)


def _start_cog_workers(core: Any) -> None:
    """``--eager``: start every Cog worker now (in parallel); a failed setup only warns."""
    import threading

    pool = core.cog
    if pool is None:
        return

    def start(model: Any) -> None:
        try:
            pool.get(model).start()
        except Exception as exc:
            print(
                f"warning: {model.owner_name}: setup failed, its predictions will fail: {exc}",
                file=sys.stderr,
                flush=True,
            )

    threads = [threading.Thread(target=start, args=(m,), daemon=True) for m in pool.models.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def banner(
    base_url: str, token: str, db: str, cog: list[str], env: dict[str, str] | None = None
) -> list[str]:
    """What ``replicate serve`` prints once it listens: how to point clients at it (with the
    extra environment ``env``, e.g. the TLS CA), where its web pages are (the ``--cog`` models'
    pages by name) and where it keeps its data."""
    lines = [
        f"Local Replicate server listening on {base_url}",
        "Use it with:",
        f"  REPLICATE_BASE_URL={base_url}",
        f"  REPLICATE_API_TOKEN={token}",
        *(f"  {name}={value}" for name, value in (env or {}).items()),
        "Web pages:",
        f"  {base_url}/  models and recent predictions",
        f"  {base_url}/web/OWNER/NAME  a model: README, playground, recent runs",
    ]
    for spec in cog:
        ref = spec.split("=", 1)[0].strip()
        lines.append(f"  {base_url}/web/{ref}  try your Cog model")
    lines.append(f"Database: {db}")
    return lines


def serve_main(argv: list[str] | None = None) -> int:
    """Entry point of ``replicate serve``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if not _is_loopback(args.host) and not args.token:
        print(
            "error: binding a non-loopback address needs --token (any-token mode is for loopback only)",
            file=sys.stderr,
        )
        return 2
    try:
        retention = _retention(args.retention)
    except ValueError:
        print(f"error: invalid --retention {args.retention!r}", file=sys.stderr)
        return 2
    if args.test_controls and not args.allow_remote_controls and not _is_loopback(args.host):
        print(f"error: {REMOTE_CONTROLS_REFUSED.format(host=args.host)}", file=sys.stderr)
        return 2
    try:
        max_run_time = (
            duration(args.max_run_time, "--max-run-time", minimum=1, maximum=MAX_DEADLINE)
            if args.max_run_time
            else None
        )
    except ValueError:
        print(f"error: invalid --max-run-time {args.max_run_time!r}", file=sys.stderr)
        return 2
    try:
        max_body = (
            size(args.max_body_size, "--max-body-size", minimum=1024)
            if args.max_body_size
            else None
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        cancel_grace = duration(args.cancel_grace, "--cancel-grace", maximum=MAX_DEADLINE)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        import uvicorn

        from .app import build_app
        from .core import Core, ServerConfig, default_db_path
    except ImportError as exc:  # pragma: no cover - depends on the install
        print(
            f"error: the local server needs the [local] extra: pip install 'replicate[local]' ({exc})",
            file=sys.stderr,
        )
        return 1
    config = ServerConfig(
        db=args.db or str(default_db_path()),
        tokens=args.token,
        test_controls=args.test_controls,
        retention=retention,
        webhook_secret=args.webhook_secret,
        public_url=args.public_url,
        demo_models=not args.no_demo_models,
        sync_file_outputs=args.sync_file_outputs,
        stream_urls=args.stream_urls,
        max_run_time=max_run_time,
        cog=args.cog,
        cancel_grace=cancel_grace,
        allow_remote_controls=args.allow_remote_controls,
    )
    if max_body is not None:
        config.max_body_size = max_body
    try:
        core = Core(config)
    except ValueError as exc:  # CogDirError: a --cog directory cannot be registered
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.eager:
        _start_cog_workers(core)
    sock = socket.socket(
        socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"error: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
        core.stop()
        return 1
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    tls = None
    if args.tls:
        from .tls import TLSUnavailable, prepare

        try:
            tls = prepare(config.db, (args.host,))
        except (TLSUnavailable, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            core.stop()
            return 1
    core.bound(
        args.host,
        port,
        scheme="https" if tls else "http",
        ca_file=str(tls.ca_file) if tls else None,
    )
    base_url = args.public_url or f"{'https' if tls else 'http'}://{host}:{port}"

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        core.start()
        from .auth import split_token

        token = split_token(args.token[0])[1] if args.token else DEFAULT_TOKEN
        env = tls.env() if tls else {}
        print("\n".join(banner(base_url, token, config.db, args.cog or [], env)), flush=True)
        try:
            yield
        finally:
            core.runner.shutdown()

    app = build_app(core, lifespan=lifespan)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http="h11",
            ws="none",
            lifespan="on",
            log_level=args.log_level,
            # Access lines are info-level: below it uvicorn would still format them per request.
            access_log=str(args.log_level).lower() in ("info", "debug", "trace"),
            timeout_graceful_shutdown=10,
            ssl_certfile=str(tls.cert_file) if tls else None,
        )
    )

    # uvicorn re-raises the stop signal after its graceful shutdown; end quietly instead.
    def _exit(signum: int, frame: Any) -> None:
        raise SystemExit(0 if signum == signal.SIGTERM else 130)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        core.stop()
        if tls is not None:
            tls.cleanup()
    return 0


def main() -> None:
    """``python -m replicate.local``."""
    raise SystemExit(serve_main(sys.argv[1:]))
