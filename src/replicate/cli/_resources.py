"""The resource commands: predictions, models, files, hardware, account, webhooks."""

from __future__ import annotations

import contextlib
import itertools
import json
import pathlib
from collections.abc import Iterator
from typing import Any

from ._display import Display
from ._errors import EXIT_USAGE, CLIError, foreign_answer, not_found
from ._inputs import describe_constraints, describe_type, input_properties, required_inputs
from ._session import hint, open_client


def _dump(obj: Any) -> Any:
    return obj.dict() if hasattr(obj, "dict") else obj


@contextlib.contextmanager
def lookup(kind: str, value: str, how_to_find: str) -> Iterator[None]:
    """Turn the API's 404 for ``value`` into the one not-found line of every command."""
    from replicate.exceptions import NotFoundError

    try:
        yield
    except NotFoundError as exc:
        if foreign_answer(exc) is not None:
            raise
        raise not_found(kind, value, how_to_find) from None


def _prediction_lookup(args: Any) -> Any:
    return lookup("prediction", args.id, f"list recent ones with: {hint(args, 'predictions list')}")


def _file_lookup(args: Any) -> Any:
    return lookup("file", args.id, f"list them with: {hint(args, 'files list')}")


def _model_lookup(args: Any, model: str) -> Any:
    name = model.split(":")[0].split("/")[-1]
    return lookup("model", model, f"look for it with: {hint(args, 'models search ' + name)}")


def _first_pages(list_method: Any, limit: int) -> list[Any]:
    from replicate.pagination import paginate

    items = itertools.chain.from_iterable(paginate(list_method))
    return list(itertools.islice(items, limit))


# ----------------------------------------------------------------- predictions


def predictions_list(args: Any, display: Display) -> int:
    with open_client(args, display) as client:
        items = _first_pages(client.predictions.list, args.limit)
        if args.json:
            display.json([_dump(p) for p in items])
            return 0
        rows = [[p.id, p.model, p.status, p.created_at] for p in items]
        display.table(["id", "model", "status", "created"], rows)
    return 0


def predictions_get(args: Any, display: Display) -> int:
    with open_client(args, display) as client, _prediction_lookup(args):
        prediction = client.predictions.get(args.id)
    _show_prediction(prediction, display, args.json)
    return 0


def predictions_cancel(args: Any, display: Display) -> int:
    with open_client(args, display) as client, _prediction_lookup(args):
        prediction = client.predictions.cancel(args.id)
    _show_prediction(prediction, display, args.json)
    return 0


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _show_prediction(prediction: Any, display: Display, as_json: bool) -> None:
    """The whole prediction: fields, input, output, metrics, then its logs; the web page on stderr."""
    if as_json:
        display.json(_dump(prediction))
        return
    rows: list[list[Any]] = [
        ["id", prediction.id],
        ["model", prediction.model],
        ["version", prediction.version],
        ["status", prediction.status],
        ["created", prediction.created_at],
        ["started", prediction.started_at],
        ["completed", prediction.completed_at],
        ["error", prediction.error],
    ]
    for name, value in (prediction.input or {}).items():
        rows.append([f"input.{name}", _compact(value)])
    if prediction.output is not None:
        rows.append(["output", _compact(prediction.output)])
    for name, value in (prediction.metrics or {}).items():
        rows.append([f"metrics.{name}", value])
    display.table(["field", "value"], [r for r in rows if r[1] is not None])
    if prediction.logs:
        display.result("logs:")
        display.result("\n".join("  " + line for line in prediction.logs.rstrip().splitlines()))
    display.web_page(prediction)


# ----------------------------------------------------------------- models


def models_get(args: Any, display: Display) -> int:
    with open_client(args, display) as client, _model_lookup(args, args.model):
        model = client.models.get(args.model)
        if args.json:
            display.json(_dump(model))
            return 0
        latest = model.latest_version
        rows = [
            ["model", f"{model.owner}/{model.name}"],
            ["description", model.description],
            ["visibility", model.visibility],
            ["runs", model.run_count],
            ["latest version", latest.id if latest else None],
            ["url", model.url],
        ]
        display.table(["field", "value"], [r for r in rows if r[1] is not None])
    return 0


def models_list(args: Any, display: Display) -> int:
    with open_client(args, display) as client:
        _show_models(_first_pages(client.models.list, args.limit), display, args.json)
    return 0


def models_search(args: Any, display: Display) -> int:
    with open_client(args, display) as client:
        page = client.models.search(args.query)
        _show_models(list(page)[: args.limit], display, args.json)
    return 0


def _show_models(models: list[Any], display: Display, as_json: bool) -> None:
    if as_json:
        display.json([_dump(m) for m in models])
        return
    rows = [[f"{m.owner}/{m.name}", m.description or "", m.run_count] for m in models]
    display.table(["model", "description", "runs"], rows)


def models_schema(args: Any, display: Display) -> int:
    from ._run import resolve_target

    with open_client(args, display) as client:
        target = resolve_target(client, args.model, args)
        if args.json:
            display.json(target.schema)
            return 0
        props = input_properties(target.schema)
        if not props:
            raise CLIError(f"{args.model} has no input schema")
        required = set(required_inputs(target.schema))
        ordered = sorted(props.items(), key=lambda kv: kv[1].get("x-order", 1_000_000))
        rows = [
            [
                name + (" *" if name in required else ""),
                describe_type(spec),
                "" if "default" not in spec else repr(spec["default"]),
                describe_constraints(spec),
                spec.get("description", ""),
            ]
            for name, spec in ordered
        ]
        display.table(
            ["input", "type", "default", "constraints", "description"],
            rows,
            title=f"Inputs of {args.model} (* = required)",
        )
    return 0


# ----------------------------------------------------------------- files


def files_upload(args: Any, display: Display) -> int:
    path = pathlib.Path(args.path).expanduser()
    if path.is_dir():
        raise CLIError(f"{args.path} is a directory; give a file to upload", EXIT_USAGE)
    if not path.exists():
        raise CLIError(f"file not found: {args.path}; check the path", EXIT_USAGE)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise CLIError(
            f"cannot read {args.path}: {exc.strerror or exc}; check its permissions", EXIT_USAGE
        ) from None
    with open_client(args, display) as client:
        file = client.files.create(path)
        if args.json:
            display.json(_dump(file))
        else:
            display.result(file.id)
            display.note(
                f"{file.size} bytes, {file.content_type}; URL: {(file.urls or {}).get('get')}"
            )
    return 0


def files_list(args: Any, display: Display) -> int:
    with open_client(args, display) as client:
        items = _first_pages(client.files.list, args.limit)
        if args.json:
            display.json([_dump(f) for f in items])
            return 0
        rows = [[f.id, f.name, f.content_type, f.size, f.created_at] for f in items]
        display.table(["id", "name", "type", "size", "created"], rows)
    return 0


def files_get(args: Any, display: Display) -> int:
    with open_client(args, display) as client, _file_lookup(args):
        file = client.files.get(args.id)
    if args.json:
        display.json(_dump(file))
        return 0
    rows = [
        ["id", file.id],
        ["name", file.name],
        ["type", file.content_type],
        ["size", file.size],
        ["created", file.created_at],
        ["expires", getattr(file, "expires_at", None)],
        ["url", (file.urls or {}).get("get")],
    ]
    display.table(["field", "value"], [r for r in rows if r[1] is not None])
    return 0


def files_delete(args: Any, display: Display) -> int:
    with open_client(args, display) as client, _file_lookup(args):
        client.files.delete(args.id)
    if args.json:
        display.json({"id": args.id, "deleted": True})
    else:
        display.note(f"Deleted file {args.id}")
    return 0


# ----------------------------------------------------------------- catalogue


def hardware(args: Any, display: Display) -> int:
    with open_client(args, display) as client:
        items = client.hardware.list()
        if args.json:
            display.json([_dump(h) for h in items])
        else:
            display.table(["sku", "name"], [[h.sku, h.name] for h in items])
    return 0


def account(args: Any, display: Display) -> int:
    with open_client(args, display) as client:
        current = client.accounts.current()
        if args.json:
            display.json(_dump(current))
        else:
            rows = [["username", current.username], ["type", current.type], ["name", current.name]]
            display.table(["field", "value"], [r for r in rows if r[1] is not None])
    return 0


def webhooks_secret(args: Any, display: Display) -> int:
    with open_client(args, display) as client:
        secret = client.webhooks.default.secret()
        if args.json:
            display.json({"key": secret.key})
        else:
            display.result(secret.key)
    return 0
