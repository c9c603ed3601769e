"""Scenario: ``client.predictions.get(id)`` in a loop over ``httpx.MockTransport``.

The handler answers every request with a realistic succeeded prediction (from the shared
recordings). ``--impl httpx`` does the same request with a plain ``httpx.Client`` and decodes
the JSON body. Figure: calls per second (best round).
"""

from __future__ import annotations

import httpx
from _common import (
    BASE_URL,
    JSON_HEADERS,
    TOKEN,
    check,
    emit,
    environment,
    load_body,
    load_json,
    parse_args,
    rates,
)

PREDICTION = load_json("prediction.json")
BODY = load_body("prediction.json")
PREDICTION_ID = PREDICTION["id"]
PATH = f"/v1/predictions/{PREDICTION_ID}"


def handler(request: httpx.Request) -> httpx.Response:
    if request.method == "GET" and request.url.path == PATH:
        return httpx.Response(200, content=BODY, headers=JSON_HEADERS)
    return httpx.Response(404, json={"detail": "Not found."})


def main() -> None:
    args = parse_args(__doc__ or "")
    transport = httpx.MockTransport(handler)
    if args.impl == "httpx":
        http = httpx.Client(
            base_url=BASE_URL,
            transport=transport,
            headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": "benchmark"},
        )

        def call() -> object:
            response = http.get(PATH)
            response.raise_for_status()
            return response.json()

        first = call()
        check(isinstance(first, dict) and first["status"] == "succeeded", "bad JSON")
    else:
        import replicate

        client = replicate.Client(api_token=TOKEN, transport=transport)

        def call() -> object:
            return client.predictions.get(PREDICTION_ID)

        first = call()
        check(getattr(first, "id", None) == PREDICTION_ID, f"wrong prediction id: {first!r}")
        check(getattr(first, "status", None) == "succeeded", "wrong status")
        check(getattr(first, "output", None) == PREDICTION["output"], "wrong output")

    if args.quick:
        figures = rates(call, count=100, rounds=10, warmup=100)
    else:
        figures = rates(call, count=300, rounds=30, warmup=300)
    result = environment(args.impl)
    result.update(scenario="predictions_get", metric="calls_per_s", **figures)
    emit(result)


if __name__ == "__main__":
    main()
