"""Argument parsing and dispatch for the ``replicate`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ._errors import CLIError, describe_api_error

Handler = Callable[[Any, Any], int]

EXAMPLES = {
    "run": """examples:
  replicate run --local replicate/hello-world -i text=world
  replicate run stability-ai/sdxl -i prompt="an astronaut" -i num_outputs=2 --output-dir out
  replicate run owner/model -i image=@photo.png -i options='{"a": 1}' --json
  replicate run owner/model -i text=hi --no-wait""",
    "stream": """examples:
  replicate stream --local local-demo/stream-text -i prompt="tell me a story"
  replicate stream meta/meta-llama-3-8b-instruct -i prompt="Write a haiku\"""",
    "predictions": """examples:
  replicate predictions list --limit 20
  replicate predictions get <id> --json
  replicate predictions cancel <id>""",
    "models": """examples:
  replicate models get replicate/hello-world
  replicate models schema replicate/hello-world
  replicate models search "upscale"
  replicate models list --json""",
    "hardware": """examples:
  replicate hardware
  replicate hardware --json""",
    "account": """examples:
  replicate account
  replicate account --local --json""",
    "webhooks": """examples:
  replicate webhooks secret
  replicate webhooks secret --json""",
    "secret": """examples:
  replicate webhooks secret > webhook-secret.txt""",
    "list": """examples:
  replicate predictions list --limit 10
  replicate models list --json""",
    "files": """examples:
  replicate files upload photo.png
  replicate files list
  replicate files get <id>
  replicate files delete <id>""",
}


def _api_options(
    parser: argparse.ArgumentParser, *, json_help: str = "print JSON for scripts"
) -> None:
    parser.add_argument("--json", action="store_true", help=json_help)
    parser.add_argument(
        "--local",
        action="store_true",
        help="start a local Replicate server for this command (no token, no network)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``replicate`` argument parser."""
    from replicate.__about__ import __version__

    from . import _resources as res
    from ._run import cmd_run, cmd_stream

    parser = argparse.ArgumentParser(
        prog="replicate",
        description="Run machine-learning models on Replicate (or on a local server).",
        epilog="Set REPLICATE_API_TOKEN to use the Replicate API, or add --local to any command.\n"
        "Run 'replicate COMMAND --help' for examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"replicate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(
        name: str, help: str, handler: Handler, parent: Any = sub
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(
            name,
            help=help,
            description=help,
            epilog=EXAMPLES.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=handler)
        return p

    for name, handler, help in (
        ("run", cmd_run, "run a model and print or save its output"),
        ("stream", cmd_stream, "run a model and print its text output as it is generated"),
    ):
        p = command(name, help, handler)
        p.add_argument("model", help="owner/name, owner/name:version or a version id")
        p.add_argument(
            "-i",
            "--input",
            action="append",
            metavar="KEY=VALUE",
            help="an input, typed from the model's schema; @path uploads a file (repeatable)",
        )
        _api_options(p, json_help="print the final prediction as JSON, with no decoration")
        if name == "run":
            p.add_argument("--no-wait", action="store_true", help="create the prediction and exit")
            p.add_argument(
                "-o", "--output-dir", default=".", help="where to save file outputs (default: .)"
            )

    predictions = command("predictions", "list, inspect and cancel predictions", _need_sub)
    psub = predictions.add_subparsers(dest="action", metavar="ACTION")
    p = command("list", "list recent predictions", res.predictions_list, psub)
    p.add_argument("--limit", type=int, default=50, help="how many to show (default: 50)")
    _api_options(p)
    for action, handler, help in (
        ("get", res.predictions_get, "show a prediction"),
        ("cancel", res.predictions_cancel, "cancel a prediction"),
    ):
        p = command(action, help, handler, psub)
        p.add_argument("id", help="the prediction id")
        _api_options(p)

    models = command("models", "look up models and their input schemas", _need_sub)
    msub = models.add_subparsers(dest="action", metavar="ACTION")
    for action, handler, help in (
        ("get", res.models_get, "show a model"),
        ("schema", res.models_schema, "show a model's inputs as a table"),
    ):
        p = command(action, help, handler, msub)
        p.add_argument("model", help="owner/name (schema also takes owner/name:version)")
        _api_options(p)
    p = command("list", "list public models", res.models_list, msub)
    p.add_argument("--limit", type=int, default=50, help="how many to show (default: 50)")
    _api_options(p)
    p = command("search", "search models", res.models_search, msub)
    p.add_argument("query", help="what to look for")
    p.add_argument("--limit", type=int, default=50, help="how many to show (default: 50)")
    _api_options(p)

    files = command("files", "upload and manage files", _need_sub)
    fsub = files.add_subparsers(dest="action", metavar="ACTION")
    p = command("upload", "upload a file", res.files_upload, fsub)
    p.add_argument("path", help="the file to upload")
    _api_options(p)
    p = command("list", "list uploaded files", res.files_list, fsub)
    p.add_argument("--limit", type=int, default=50, help="how many to show (default: 50)")
    _api_options(p)
    for action, handler, help in (
        ("get", res.files_get, "show a file"),
        ("delete", res.files_delete, "delete a file"),
    ):
        p = command(action, help, handler, fsub)
        p.add_argument("id", help="the file id")
        _api_options(p)

    _api_options(command("hardware", "list the hardware models can run on", res.hardware))
    _api_options(command("account", "show the account of the API token", res.account))
    webhooks = command("webhooks", "webhook settings", _need_sub)
    wsub = webhooks.add_subparsers(dest="action", metavar="ACTION")
    _api_options(command("secret", "print the webhook signing secret", res.webhooks_secret, wsub))

    from ._batch import add_batch_command

    add_batch_command(sub)

    serve = sub.add_parser(
        "serve",
        help="start a local Replicate-compatible server",
        add_help=False,
        description="Start a local Replicate-compatible server (see 'replicate serve --help').",
    )
    serve.set_defaults(handler=None)
    return parser


def _need_sub(args: Any, display: Any) -> int:
    raise CLIError(
        f"'replicate {args.command}' needs an action: see 'replicate {args.command} --help'", 2
    )


def main(argv: list[str] | None = None) -> int:
    """Run the ``replicate`` command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return _serve(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    from ._display import Display

    display = Display(quiet=bool(getattr(args, "json", False)))
    try:
        return int(args.handler(args, display))
    except CLIError as exc:
        display.error(str(exc))
        return exc.code
    except KeyboardInterrupt:
        display.err.print("interrupted")
        return 130
    except Exception as exc:
        message = _describe(exc)
        if message is None:
            raise
        display.error(message)
        return 1


def _describe(exc: Exception) -> str | None:
    from replicate.exceptions import APIConnectionError, ModelError, ReplicateError

    if isinstance(exc, ReplicateError):
        return describe_api_error(exc)
    if isinstance(exc, APIConnectionError):
        return f"cannot reach the Replicate API ({type(exc).__name__}: {exc}); check your network"
    if isinstance(exc, ModelError):
        return f"the model failed: {exc}"
    if isinstance(exc, (ValueError, TypeError)):
        return str(exc)
    return None


def _serve(argv: list[str]) -> int:
    try:
        from replicate.local.cli import serve_main
    except ImportError as exc:
        print(
            f'error: replicate serve needs the local server extra: pip install "replicate[local]" ({exc})',
            file=sys.stderr,
        )
        return 2
    return int(serve_main(argv) or 0)
