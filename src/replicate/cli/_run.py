"""``replicate run`` and ``replicate stream``."""

from __future__ import annotations

import pathlib
import re
import time
from typing import Any

from ._display import Display
from ._errors import CLIError
from ._inputs import parse_inputs
from ._session import open_client

_VERSION_ID = re.compile(r"^[0-9a-f]{64}$")
_FILE_URL = re.compile(r"^(https?://\S+|data:[^,]*,.*)$", re.DOTALL)


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
    def concatenates(self) -> bool:
        return self.output_spec().get("x-cog-array-display") == "concatenate"


def resolve_target(client: Any, ref: str) -> Target:
    """Look up the model or version behind ``ref`` (for its schema and how to create predictions)."""
    from replicate.exceptions import NotFoundError

    if _VERSION_ID.match(ref):
        return Target(ref, None, ref, None)
    model, _, version = ref.partition(":")
    if model.count("/") != 1 or not all(model.split("/")):
        raise CLIError(f"invalid model {ref!r}: expected owner/name or owner/name:version")
    try:
        if version:
            found = client.models.versions.get(model, version)
            return Target(ref, model, version, found.openapi_schema)
        found_model = client.models.get(model)
    except NotFoundError:
        raise CLIError(
            f"unknown model {ref!r}" if not version else f"unknown version {ref!r}"
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


def cmd_run(args: Any, display: Display) -> int:
    """Run a model, show its progress, print text output and save file outputs."""
    with open_client(args, display) as client:
        target = resolve_target(client, args.model)
        inputs = parse_inputs(args.input or [], target.schema)
        streams = target.is_text_iterator and not args.json and not args.no_wait
        # No Prefer: wait, so that the prediction id is known at once and Ctrl-C can cancel it.
        prediction = create_prediction(client, target, inputs, wait=False)
        if args.no_wait:
            if args.json:
                display.json(prediction.dict())
            else:
                display.result(prediction.id)
                display.note(f"Follow it with: replicate predictions get {prediction.id}")
            return 0
        try:
            if streams and (prediction.urls or {}).get("stream"):
                _stream_text(prediction, display)
                prediction.reload()
            prediction = _wait_with_display(client, prediction, display)
        except KeyboardInterrupt:
            display.note(f"Canceling prediction {prediction.id} ...")
            try:
                prediction.cancel()
            finally:
                display.err.print(f"Canceled prediction {prediction.id}")
            return 130
        return _finish(client, prediction, target, display, args, streamed=streams)


def cmd_stream(args: Any, display: Display) -> int:
    """Run a model and print its text output as it is generated."""
    with open_client(args, display) as client:
        target = resolve_target(client, args.model)
        inputs = parse_inputs(args.input or [], target.schema)
        ref = target.version if target.version and target.model is None else target.ref
        if target.version and target.model:
            ref = f"{target.model}:{target.version}"
        from replicate.stream import _start

        # client.stream() returns a bare generator (as in 1.0.x); keep the prediction to cancel.
        prediction, events = _start(client, ref, inputs)
        try:
            for event in events:
                if _is_output(event):
                    display.write_chunk(str(event))
        except KeyboardInterrupt:
            events.close()
            display.note(f"Canceling prediction {prediction.id} ...")
            prediction.cancel()
            return 130
        display.write_chunk("\n")
        return 0


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
    client: Any, prediction: Any, target: Target, display: Display, args: Any, *, streamed: bool
) -> int:
    if args.json:
        display.json(prediction.dict())
        return 0 if prediction.status == "succeeded" else 1
    if prediction.status != "succeeded":
        tail = [line for line in (prediction.logs or "").splitlines() if line.strip()][-5:]
        for line in tail:
            display.note(line)
        reason = prediction.error or prediction.status
        raise CLIError(f"prediction {prediction.id} {prediction.status}: {reason}")
    if streamed:
        return 0
    render_output(
        client, prediction.output, display, pathlib.Path(args.output_dir), target.concatenates
    )
    return 0


def render_output(
    client: Any, output: Any, display: Display, output_dir: pathlib.Path, concatenate: bool
) -> None:
    """Print text output; save file outputs into ``output_dir`` and print their paths."""
    if output is None:
        return
    if concatenate and isinstance(output, list) and all(isinstance(x, str) for x in output):
        display.result("".join(output))
        return
    saved = _save_files(client, output, display, output_dir)
    if isinstance(saved, str):
        display.result(saved)
    elif isinstance(saved, list) and all(isinstance(x, str) for x in saved):
        for item in saved:
            display.result(item)
    else:
        display.json(saved)


def _save_files(client: Any, value: Any, display: Display, output_dir: pathlib.Path) -> Any:
    if isinstance(value, str) and _FILE_URL.match(value):
        return str(download(client, value, display, output_dir))
    if isinstance(value, list):
        return [_save_files(client, v, display, output_dir) for v in value]
    if isinstance(value, dict):
        return {k: _save_files(client, v, display, output_dir) for k, v in value.items()}
    return value


def download(client: Any, url: str, display: Display, output_dir: pathlib.Path) -> pathlib.Path:
    """Save one file output, with a progress bar, without overwriting existing files."""
    from replicate.helpers import FileOutput, file_name_from_url

    output_dir.mkdir(parents=True, exist_ok=True)
    path = _free_path(output_dir / file_name_from_url(url))
    tmp = path.with_name(path.name + ".part")
    with display.download_progress() as bar:
        task = bar.add_task(path.name, total=None)
        with open(tmp, "wb") as f:
            for chunk in FileOutput(url, client):
                f.write(chunk)
                bar.advance(task, len(chunk))
    tmp.replace(path)
    return path


def _free_path(path: pathlib.Path) -> pathlib.Path:
    if not path.exists() and not path.with_name(path.name + ".part").exists():
        return path
    for n in range(1, 10_000):
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise CLIError(f"too many files named like {path}")
