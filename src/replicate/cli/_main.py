"""Dispatch for the ``replicate`` command, and the one place that turns exceptions into exit codes.

Whatever goes wrong, the user sees one line on stderr (``error: ...``) and a documented exit
code (``_errors.EXIT_CODES_HELP``); never a traceback. ``REPLICATE_CLI_DEBUG=1`` re-raises
unexpected exceptions for whoever debugs the CLI itself.
"""

from __future__ import annotations

import os
import sys

from ._errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_PIPE_CLOSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CLIError,
    cannot_reach,
    describe_api_error,
    exit_code_of_api_error,
    foreign_answer,
)

# Modules that only the [local] extra installs: a missing one means `pip install "replicate[local]"`.
_LOCAL_EXTRA = {"uvicorn", "starlette", "anyio", "h11", "multipart", "python_multipart"}


def main(argv: list[str] | None = None) -> int:
    """Run the ``replicate`` command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["serve"]:
            return _serve(argv[1:])
        return _dispatch(argv)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except BrokenPipeError:
        return _pipe_closed()
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except BaseException as exc:
        if not isinstance(exc, Exception):
            raise
        message, code = describe(exc)
        if message is None:
            if os.environ.get("REPLICATE_CLI_DEBUG"):
                raise
            message = (
                f"unexpected {type(exc).__name__}: {exc}; please report it at "
                "https://github.com/replicate/replicate-python/issues "
                "(REPLICATE_CLI_DEBUG=1 shows the traceback)"
            )
        _say("error: " + message)
        return code


def _dispatch(argv: list[str]) -> int:
    from ._parser import build_parser, leaf_commands, need_action

    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported by the command's own parser, so the hint names its --help
        path = tuple(str(getattr(args, "command_path", "")).split())
        own = dict(leaf_commands(parser)).get(path, parser)
        own.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.handler is None:
        need_action(args)
    from ._display import Display

    display = Display(quiet=bool(getattr(args, "json", False)))
    return int(args.handler(args, display))


def describe(exc: Exception) -> tuple[str | None, int]:
    """The one line and exit code for an exception (``None``: not one we know)."""
    from replicate.exceptions import (
        APIRequestError,
        DownloadError,
        ModelError,
        PredictionTimeoutError,
        ReplicateError,
    )

    if isinstance(exc, CLIError):
        return str(exc), exc.code
    if isinstance(exc, DownloadError):
        return f"download failed: {exc.detail}", EXIT_FAILED
    if isinstance(exc, ReplicateError):
        foreign = foreign_answer(exc)
        if foreign is not None:
            return str(foreign), foreign.code
        return describe_api_error(exc), exit_code_of_api_error(exc)
    if isinstance(exc, APIRequestError):
        error = cannot_reach(exc)
        return str(error), error.code
    if isinstance(exc, PredictionTimeoutError):
        return f"the prediction timed out: {exc}", EXIT_FAILED
    if isinstance(exc, ModelError):
        return f"the model failed: {exc}", EXIT_FAILED
    if isinstance(exc, ModuleNotFoundError):
        return missing_module(exc.name or str(exc)), EXIT_USAGE
    if isinstance(exc, OSError):
        return _describe_os_error(exc), EXIT_FAILED
    if _is_transport_error(exc):
        error = cannot_reach(exc)
        return str(error), EXIT_UNREACHABLE
    if isinstance(exc, (ValueError, TypeError)):
        return str(exc), EXIT_USAGE
    return None, EXIT_FAILED


def missing_module(name: str) -> str:
    """The one line for a module that is not installed."""
    top = name.split(".")[0]
    if top in _LOCAL_EXTRA:
        return (
            f'the local server needs {top}, which is not installed: pip install "replicate[local]"'
        )
    return f"the module {top} is not installed: reinstall replicate (pip install replicate)"


def _describe_os_error(exc: OSError) -> str:
    what = exc.strerror or type(exc).__name__
    where = f": {exc.filename}" if exc.filename else ""
    return f"{what}{where}; check the path and its permissions"


def _is_transport_error(exc: Exception) -> bool:
    httpx = sys.modules.get("httpx")
    return httpx is not None and isinstance(exc, httpx.TransportError)


def _say(line: str) -> None:
    try:
        sys.stderr.write(" ".join(line.split()) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr itself is gone: nothing left to tell
        pass


def _pipe_closed() -> int:
    """The reader of stdout went away (``| head``): exit quietly, as the Python docs advise.

    Python flushes stdout again at exit; pointing it at /dev/null keeps that flush from
    raising a second ``BrokenPipeError`` (and printing "Exception ignored").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass
    return EXIT_PIPE_CLOSED


def _serve(argv: list[str]) -> int:
    try:
        from replicate.local.cli import serve_main
    except ImportError as exc:
        raise CLIError(
            missing_module(getattr(exc, "name", None) or "uvicorn"), EXIT_USAGE
        ) from None
    return int(serve_main(argv) or 0)
