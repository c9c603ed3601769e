"""The ``replicate`` argument parser: commands, options and each command's examples."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from ._errors import EXIT_CODES_HELP, EXIT_USAGE, CLIError

Handler = Callable[[Any, Any], int]

# Each command's own examples (the key is the command path), shown under "Examples:" in --help.
EXAMPLES = {
    "run": """replicate run --local replicate/hello-world -i text=world
  replicate run stability-ai/sdxl -i prompt="an astronaut" -i num_outputs=2 -o out/
  replicate run local-demo/make-file -i text=hi -o picture.png
  replicate run owner/model -i image=@photo.png -i options='{"a": 1}' --json
  replicate run owner/model -i text=hi --no-wait""",
    "stream": """replicate stream --local local-demo/stream-text -i prompt="tell me a story"
  replicate stream meta/meta-llama-3-8b-instruct -i prompt="Write a haiku"
  replicate stream --local local-demo/stream-text -i prompt="a b c" --json   # NDJSON events""",
    "predictions": """replicate predictions list --limit 20
  replicate predictions get <id>
  replicate predictions cancel <id>""",
    "predictions list": """replicate predictions list --limit 20
  replicate predictions list --json
  replicate predictions list | cut -f1      # piped: tab-separated rows, ids whole""",
    "predictions get": """replicate predictions get <id>
  replicate predictions get <id> --json""",
    "predictions cancel": """replicate predictions cancel <id>
  replicate predictions cancel <id> --json""",
    "models": """replicate models get replicate/hello-world
  replicate models schema replicate/hello-world
  replicate models search "upscale"
  replicate models list --json""",
    "models get": """replicate models get replicate/hello-world
  replicate models get --local local-demo/make-file --json""",
    "models schema": """replicate models schema replicate/hello-world
  replicate models schema owner/name:<version> --json""",
    "models list": """replicate models list --limit 10
  replicate models list --json""",
    "models search": """replicate models search "upscale"
  replicate models search hello --limit 5 --json""",
    "files": """replicate files upload photo.png
  replicate files list
  replicate files get <id>
  replicate files delete <id>""",
    "files upload": """replicate files upload photo.png
  replicate files upload notes.txt --json""",
    "files list": """replicate files list --limit 10
  replicate files list --json""",
    "files get": """replicate files get <id>
  replicate files get <id> --json""",
    "files delete": """replicate files delete <id>
  replicate files delete <id> --json""",
    "hardware": """replicate hardware
  replicate hardware --json""",
    "account": """replicate account
  replicate account --local --json""",
    "webhooks": """replicate webhooks secret
  replicate webhooks secret --json""",
    "webhooks secret": """replicate webhooks secret > webhook-secret.txt
  replicate webhooks secret --json""",
}


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message}; see '{self.prog} --help'", EXIT_USAGE)


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return number


def _api_options(parser: argparse.ArgumentParser, *, json_help: str = "print JSON") -> None:
    parser.add_argument("--json", action="store_true", help=json_help)
    parser.add_argument(
        "--local",
        action="store_true",
        help="start a local Replicate server for this command (no token, no network)",
    )


def _limit_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=_limit, default=50, help="how many to show (default: 50)")


def build_parser() -> Parser:
    """The ``replicate`` argument parser."""
    from replicate.__about__ import __version__

    from . import _resources as res
    from ._run import cmd_run, cmd_stream

    parser = Parser(
        prog="replicate",
        description="Run machine-learning models on Replicate (or on a local server).",
        epilog="Set REPLICATE_API_TOKEN to use the Replicate API (REPLICATE_BASE_URL to use\n"
        "another server, such as `replicate serve`), or add --local to any command.\n"
        "Run 'replicate COMMAND --help' for examples.\n\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"replicate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name: str, help: str, handler: Handler | None, parent: Any = sub) -> Parser:
        path = " ".join([*parent._prog_prefix.split()[1:], name])
        examples = EXAMPLES.get(path)
        p: Parser = parent.add_parser(
            name,
            help=help,
            description=help,
            epilog=f"Examples:\n  {examples}" if examples else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=handler, command_path=path)
        return p

    for name, handler, help in (
        ("run", cmd_run, "run a model and print or save its output"),
        ("stream", cmd_stream, "run a model and print its text output as it is generated"),
    ):
        p = command(name, help, handler)
        p.add_argument("model", help="owner/name, owner/name:version or a version id")
        p.add_argument("extra", nargs="*", help=argparse.SUPPRESS)
        p.add_argument(
            "-i",
            "--input",
            action="append",
            metavar="KEY=VALUE",
            help="an input, typed from the model's schema; @path reads a file: its text for "
            "text inputs, an upload for file inputs (repeatable)",
        )
        if name == "run":
            _api_options(
                p,
                json_help="print the final prediction as JSON; with -o, also download the files "
                "and add their paths as local_output",
            )
            p.add_argument(
                "--no-wait",
                action="store_true",
                help="create the prediction, print its id and exit",
            )
            p.add_argument(
                "-o",
                "--output",
                "--output-dir",
                dest="output",
                metavar="PATH",
                help="where to save file outputs: a file name (one output) or a directory "
                "(an existing one, a path ending in /, or several outputs); default: .",
            )
        else:
            _api_options(p, json_help="print the stream's events as JSON, one per line (NDJSON)")

    predictions = command("predictions", "list, inspect and cancel predictions", None)
    psub = predictions.add_subparsers(dest="action", metavar="ACTION")
    p = command("list", "list recent predictions", res.predictions_list, psub)
    _limit_option(p)
    _api_options(p)
    for action, handler, help in (
        ("get", res.predictions_get, "show a prediction: input, output, logs, metrics, web page"),
        ("cancel", res.predictions_cancel, "cancel a prediction"),
    ):
        p = command(action, help, handler, psub)
        p.add_argument("id", help="the prediction id")
        _api_options(p)

    models = command("models", "look up models and their input schemas", None)
    msub = models.add_subparsers(dest="action", metavar="ACTION")
    for action, handler, help in (
        ("get", res.models_get, "show a model"),
        ("schema", res.models_schema, "show a model's inputs as a table"),
    ):
        p = command(action, help, handler, msub)
        p.add_argument("model", help="owner/name (schema also takes owner/name:version)")
        _api_options(p)
    p = command("list", "list public models", res.models_list, msub)
    _limit_option(p)
    _api_options(p)
    p = command("search", "search models", res.models_search, msub)
    p.add_argument("query", help="what to look for")
    _limit_option(p)
    _api_options(p)

    files = command("files", "upload and manage files", None)
    fsub = files.add_subparsers(dest="action", metavar="ACTION")
    p = command("upload", "upload a file", res.files_upload, fsub)
    p.add_argument("path", help="the file to upload")
    _api_options(p)
    p = command("list", "list uploaded files", res.files_list, fsub)
    _limit_option(p)
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
    webhooks = command("webhooks", "webhook settings", None)
    wsub = webhooks.add_subparsers(dest="action", metavar="ACTION")
    _api_options(command("secret", "print the webhook signing secret", res.webhooks_secret, wsub))

    from ._batch import add_batch_command

    add_batch_command(sub).set_defaults(command_path="batch")

    serve = sub.add_parser(
        "serve",
        help="start a local Replicate-compatible server",
        add_help=False,
        description="Start a local Replicate-compatible server (see 'replicate serve --help').",
    )
    serve.set_defaults(handler=None, command_path="serve")
    return parser


def need_action(args: Any) -> NoReturn:
    """A command group was given without its action."""
    raise CLIError(
        f"'replicate {args.command_path}' needs an action; see 'replicate {args.command_path} "
        "--help'",
        EXIT_USAGE,
    )


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Any:
    """Yield ``(path, subparser)`` for every command that does something (for tests and docs)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from leaf_commands(child, (*path, name))
            return
    if path:
        yield path, parser
