"""Scenario: ``client.run(ref, input=...)`` of a prediction that succeeds at once.

The fake API (``_api.py``) answers the create with 201 + ``Preference-Applied: wait`` and a
succeeded prediction, and answers the version lookup. The ref is ``owner/name:version``
(``--ref version``, the default) or ``owner/name`` (``--ref model``: the model's predictions
endpoint). ``--impl httpx`` sends the one create request a client needs (POST with ``Prefer:
wait`` to the same path) and decodes the JSON: the floor of any httpx-based client. Figure: runs per second (best round). The requests each implementation sends
for one run are reported under ``requests``.
"""

from __future__ import annotations

import _api
import httpx
from _common import BASE_URL, TOKEN, check, emit, environment, parse_args, rates


def main() -> None:
    args = parse_args(__doc__ or "", refs=_api.REFS)
    transport = httpx.MockTransport(_api.route)
    if args.impl == "httpx":
        http = httpx.Client(
            base_url=BASE_URL,
            transport=transport,
            headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": "benchmark"},
        )
        path, body = _api.raw_create(args.ref)

        def call() -> object:
            response = http.post(path, json=body, headers={"Prefer": "wait"})
            response.raise_for_status()
            data = response.json()
            if data["status"] != "succeeded":
                raise RuntimeError(data["status"])
            return data["output"]
    else:
        import replicate

        client = replicate.Client(api_token=TOKEN, transport=transport)
        ref = _api.ref_of(args.ref)

        def call() -> object:
            return client.run(ref, input=_api.INPUT)

    _api.RECORD = True
    first = call()
    first_requests = list(_api.REQUESTS)
    _api.REQUESTS.clear()
    second = call()
    second_requests = list(_api.REQUESTS)
    _api.RECORD = False
    check(_api.output_matches(first), f"unexpected output: {first!r}")
    check(_api.output_matches(second), f"unexpected output: {second!r}")

    if args.quick:
        figures = rates(call, count=100, rounds=8, warmup=50)
    else:
        figures = rates(call, count=200, rounds=25, warmup=200)
    result = environment(args.impl)
    result.update(
        scenario="run" if args.ref == "version" else "run_model",
        ref=args.ref,
        metric="runs_per_s",
        requests=first_requests,
        requests_second_run=second_requests,
        output_type=type(first[0]).__name__
        if isinstance(first, list) and first
        else type(first).__name__,
        **figures,
    )
    emit(result)


if __name__ == "__main__":
    main()
