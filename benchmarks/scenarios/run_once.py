"""Scenario: ``client.run(ref, input=...)`` of a prediction that succeeds at once.

The fake API (``_api.py``) answers the create with 201 + ``Preference-Applied: wait`` and a
succeeded prediction, and answers the version lookup. The ref is ``owner/name:version``
(``--ref version``, the default) or ``owner/name`` (``--ref model``: the model's predictions
endpoint). ``--impl httpx`` sends the one create request a client needs (POST with ``Prefer:
wait`` to the same path) and decodes the JSON: the floor of any httpx-based client. With
``--impl ours,httpx`` both run in this process, their rounds interleaved. Figure: runs per
second (best round). The requests each implementation sends for one run are reported under
``requests``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import _api
import httpx
from _common import (
    BASE_URL,
    TOKEN,
    check,
    emit_joint,
    environment,
    interleaved_rates,
    parse_args,
)


def make_call(impl: str, kind: str) -> Callable[[], object]:
    """The call measured for ``impl``, over its own MockTransport."""
    transport = httpx.MockTransport(_api.route)
    if impl == "httpx":
        http = httpx.Client(
            base_url=BASE_URL,
            transport=transport,
            headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": "benchmark"},
        )
        path, body = _api.raw_create(kind)

        def call() -> object:
            response = http.post(path, json=body, headers={"Prefer": "wait"})
            response.raise_for_status()
            data = response.json()
            if data["status"] != "succeeded":
                raise RuntimeError(data["status"])
            return data["output"]

        return call

    import replicate

    client = replicate.Client(api_token=TOKEN, transport=transport)
    ref = _api.ref_of(kind)

    def run() -> object:
        return client.run(ref, input=_api.INPUT)

    return run


def first_runs(call: Callable[[], object]) -> dict[str, Any]:
    """Run twice, recording the requests; check the outputs."""
    _api.RECORD = True
    _api.REQUESTS.clear()
    first = call()
    first_requests = list(_api.REQUESTS)
    _api.REQUESTS.clear()
    second = call()
    second_requests = list(_api.REQUESTS)
    _api.RECORD = False
    check(_api.output_matches(first), f"unexpected output: {first!r}")
    check(_api.output_matches(second), f"unexpected output: {second!r}")
    return {
        "requests": first_requests,
        "requests_second_run": second_requests,
        "output_type": type(first[0]).__name__
        if isinstance(first, list) and first
        else type(first).__name__,
    }


def main() -> None:
    args = parse_args(__doc__ or "", refs=_api.REFS)
    impls = args.impl.split(",")
    calls = {impl: make_call(impl, args.ref) for impl in impls}
    seen = {impl: first_runs(call) for impl, call in calls.items()}
    if args.quick:
        figures = interleaved_rates(calls, count=100, rounds=8, warmup=50)
    else:
        figures = interleaved_rates(calls, count=200, rounds=25, warmup=200)
    results = {}
    for impl in impls:
        result = environment(impl)
        result.update(
            scenario="run" if args.ref == "version" else "run_model",
            ref=args.ref,
            metric="runs_per_s",
            **seen[impl],
            **figures[impl],
        )
        results[impl] = result
    emit_joint(results)


if __name__ == "__main__":
    main()
