"""``replicate run`` and ``replicate stream``."""

from __future__ import annotations

import re
import time
from typing import Any

from ._display import Display
from ._errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, CLIError, foreign_answer, not_found
from ._inputs import parse_inputs
from ._output import OutputTarget, render_output, save_output
from ._session import hint, open_client
from ._validate import validate_inputs

_VERSION_ID = re.compile(r"^[0-9a-f]{64}$")


class Target:
    """What a model reference points at: a model, maybe a pinned version, and its schema."""

    def __init__(self, ref: str, model: str | None, version: str | None, schema: Any) -> None:
        self.ref = ref
        self.model = model
        self.version = version
        self.schema = schema if isinstance(schema, dict) else None

    def output_spec(self) -> dict[str, Any]:
        schemas = ((self.schema or {}).get("components") or {}).get("schemas") or {}
        return schemas.get("Output") or {}

    @property
    def is_text_iterator(self) -> bool:
        spec = self.output_spec()
        items = spec.get("items") or {}
        return (
            spec.get("type") == "array"
            and spec.get("x-cog-array-type") == "iterator"
            and items.get("type") == "string"
            and items.get("format") != "uri"
        )

    @property
    def may_return_files(self) -> bool:
        """Whether the output can hold file URLs (an unknown schema might)."""
        return _may_hold_files(self.output_spec())

    @property
    def concatenates(self) -> bool:
        return self.output_spec().get("x-cog-array-display") == "concatenate"


def _may_hold_files(spec: dict[str, Any]) -> bool:
    if not spec or spec.get("format") == "uri":
        return True
    kind = spec.get("type")
    if kind == "array":
        return _may_hold_files(spec.get("items") or {})
    return kind not in ("string", "integer", "number", "boolean")


def resolve_target(client: Any, ref: str, args: Any = None) -> Target:
    """Look up the model or version behind ``ref`` (for its schema and how to create predictions)."""
    from replicate.exceptions import NotFoundError

    if _VERSION_ID.match(ref):
        return Target(ref, None, ref, None)
    model, _, version = ref.partition(":")
    if model.count("/") != 1 or not all(model.split("/")):
        raise CLIError(
            f"invalid model {ref!r}: expected owner/name or owner/name:version "
            "(for example replicate/hello-world)",
            EXIT_USAGE,
        )
    try:
        if version:
            found = client.models.versions.get(model, version)
            return Target(ref, model, version, found.openapi_schema)
        found_model = client.models.get(model)
    except NotFoundError as exc:
        if foreign_answer(exc) is not None:
            raise
        if version:
            raise not_found(
                "version", ref, f"see the latest one with: {hint(args, 'models get ' + model)}"
            ) from None
        raise not_found(
            "model", ref, f"look for it with: {hint(args, 'models search ' + model.split('/')[1])}"
        ) from None
    latest = found_model.latest_version
    if latest is None or getattr(found_model, "is_official", False):
        schema = latest.openapi_schema if latest is not None else None
        return Target(ref, model, None, schema)
    return Target(ref, model, latest.id, latest.openapi_schema)


def create_prediction(client: Any, target: Target, inputs: dict[str, Any], *, wait: Any) -> Any:
    if target.version is not None:
        return client.predictions.create(version=target.version, input=inputs, wait=wait)
    return client.models.predictions.create(target.model, input=inputs, wait=wait)


def check_positionals(args: Any) -> None:
    """``replicate run m text=x``: inputs go with ``-i``."""
    for extra in args.extra or []:
        if "=" in extra:
            raise CLIError(
                f"unexpected argument {extra!r}: inputs go with -i, as in: -i {extra}", EXIT_USAGE
            )
        raise CLIError(
            f"unexpected argument {extra!r}: {args.command_path} takes one model; see "
            f"'replicate {args.command_path} --help'",
            EXIT_USAGE,
        )


def prepare(client: Any, args: Any) -> tuple[Target, dict[str, Any]]:
    """The target and its inputs, checked against the schema (nothing is created yet)."""
    target = resolve_target(client, args.model, args)
    inputs = parse_inputs(args.input or [], target.schema)
    validate_inputs(inputs, target.schema)
    return target, inputs


def cmd_run(args: Any, display: Display) -> int:
    """Run a model, show its progress, print text output and save file outputs."""
    check_positionals(args)
    if args.local and args.no_wait:
        raise CLIError(
            "--no-wait needs a server that outlives this command (--local stops its server, "
            "and the prediction, on exit): run `replicate serve` in another terminal, set the "
            "REPLICATE_BASE_URL and REPLICATE_API_TOKEN it prints, and drop --local",
            EXIT_USAGE,
        )
    downloads = not args.no_wait and (not args.json or args.output is not None)
    output = OutputTarget(args.output)
    with open_client(args, display) as client:
        target, inputs = prepare(client, args)
        if downloads and target.may_return_files:
            output.check()
        streams = target.is_text_iterator and not args.json and not args.no_wait
        # No Prefer: wait, so that the prediction id is known at once and Ctrl-C can cancel it.
        prediction = create_prediction(client, target, inputs, wait=False)
        if args.no_wait:
            if args.json:
                display.json(prediction.dict())
            else:
                display.result(prediction.id)
                display.web_page(prediction)
                display.note(f"Follow it with: {hint(args, 'predictions get ' + prediction.id)}")
            return 0
        try:
            display.web_page(prediction)
            if streams and (prediction.urls or {}).get("stream"):
                _stream_text(prediction, display)
                prediction.reload()
            prediction = _wait_with_display(client, prediction, display)
        except KeyboardInterrupt:
            _cancel(prediction, display)
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            _cancel(prediction, None)
            raise
        return _finish(client, prediction, target, display, args, output, streamed=streams)


def _cancel(prediction: Any, display: Display | None) -> None:
    """Cancel on Ctrl-C (saying so) or when the reader went away (quietly)."""
    if display is not None:
        display.note(f"Canceling prediction {prediction.id} ...")
    try:
        prediction.cancel()
    except Exception:
        if display is None:
            return
        raise
    if display is not None:
        display.err.print(f"Canceled prediction {prediction.id}")


def cmd_stream(args: Any, display: Display) -> int:
    """Run a model and print its text output as it is generated (``--json``: NDJSON events)."""
    check_positionals(args)
    with open_client(args, display) as client:
        target, inputs = prepare(client, args)
        output = target.output_spec()
        if target.schema is not None and output.get("x-cog-array-type") != "iterator":
            raise CLIError(
                f"{args.model} does not stream its output (it returns "
                f"{output.get('type', 'one value')}, not an iterator); use: "
                f"{hint(args, 'run ' + args.model)} with the same -i inputs",
                EXIT_USAGE,
            )
        ref = target.version if target.version and target.model is None else target.ref
        if target.version and target.model:
            ref = f"{target.model}:{target.version}"
        from replicate.stream import _start

        # client.stream() returns a bare generator (as in 1.0.x); keep the prediction to cancel.
        prediction, events = _start(client, ref, inputs, use_file_output=False)
        try:
            display.web_page(prediction)
            for event in events:
                if args.json:
                    display.json_line(_event_dict(event))
                elif _is_output(event):
                    display.write_chunk(str(event))
        except KeyboardInterrupt:
            events.close()
            if not args.json:
                display.write_chunk("\n")
            _cancel(prediction, display)
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            events.close()
            _cancel(prediction, None)
            raise
        if not args.json:
            display.write_chunk("\n")
        return 0


def _event_dict(event: Any) -> dict[str, Any]:
    kind = getattr(event, "event", None)
    return {"event": getattr(kind, "value", kind), "id": event.id, "data": str(event.data)}


def _is_output(event: Any) -> bool:
    kind = getattr(event, "event", None)
    return getattr(kind, "value", kind) == "output"


def _stream_text(prediction: Any, display: Display) -> None:
    for event in prediction.stream(use_file_output=False):
        if _is_output(event):
            display.write_chunk(str(event))
    display.write_chunk("\n")


def _wait_with_display(client: Any, prediction: Any, display: Display) -> Any:
    if prediction.is_terminal:
        return prediction
    with display.prediction_progress() as bar:
        task = bar.add_task(_status_text(prediction), total=None, log="")
        polls = 0
        while not prediction.is_terminal:
            polls += 1
            # Quick first polls catch fast models; then the client's interval.
            time.sleep(min(0.1 * polls, max(client.poll_interval, 0.05)))
            prediction.reload()
            progress = prediction.progress
            bar.update(
                task,
                description=_status_text(prediction),
                total=progress.total if progress else None,
                completed=progress.current if progress else 0,
                log=_last_log_line(prediction.logs),
            )
    return prediction


def _status_text(prediction: Any) -> str:
    return f"{prediction.id} [bold]{prediction.status}[/bold]"


def _last_log_line(logs: str | None) -> str:
    lines = [line.strip() for line in (logs or "").splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return last if len(last) <= 60 else last[:57] + "..."


def _finish(
    client: Any,
    prediction: Any,
    target: Target,
    display: Display,
    args: Any,
    output: OutputTarget,
    *,
    streamed: bool,
) -> int:
    if args.json:
        data = prediction.dict()
        if args.output is not None and prediction.status == "succeeded":
            data["local_output"] = (
                save_output(client, prediction.output, display, output, prediction.id)
                if target.may_return_files
                else prediction.output
            )
        display.json(data)
        return 0 if prediction.status == "succeeded" else EXIT_FAILED
    if prediction.status != "succeeded":
        tail = [line for line in (prediction.logs or "").splitlines() if line.strip()][-5:]
        for line in tail:
            display.note(line)
        reason = prediction.error or prediction.status
        raise CLIError(f"prediction {prediction.id} {prediction.status}: {reason}")
    if streamed:
        return 0
    render_output(
        client, prediction, display, output, target.concatenates, files=target.may_return_files
    )
    return 0
