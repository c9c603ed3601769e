"""Scenario: 1,000 concurrent ``client.async_run(...)`` over a MockTransport that sleeps 20 ms.

The handler is an ``async def`` that awaits ``asyncio.sleep(0.02)`` before answering like the
fake API of ``_api.py`` (create -> 201 succeeded; version lookup answered). One client, one event
loop; one warm-up run, then ``rounds`` x ``asyncio.gather`` of 1,000 runs. ``--ref version``
(default) runs ``owner/name:version``, ``--ref model`` runs ``owner/name``. ``--impl httpx``
sends the same one create request by hand with one ``httpx.AsyncClient`` (the floor). Figure: wall time of one gather in
seconds (best round; lower is better).
"""

from __future__ import annotations

import asyncio
import statistics
import time

import _api
import httpx
from _common import BASE_URL, TOKEN, check, emit, environment, parse_args

CONCURRENCY = 1000
DELAY_S = 0.02


async def measure(quick: bool, impl: str, kind: str) -> dict[str, object]:
    transport = httpx.MockTransport(_api.make_async_route(DELAY_S))
    if impl == "httpx":
        http = httpx.AsyncClient(
            base_url=BASE_URL,
            transport=transport,
            headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": "benchmark"},
        )
        path, body = _api.raw_create(kind)

        async def call() -> object:
            response = await http.post(path, json=body, headers={"Prefer": "wait"})
            response.raise_for_status()
            data = response.json()
            if data["status"] != "succeeded":
                raise RuntimeError(data["status"])
            return data["output"]
    else:
        import replicate

        client = replicate.Client(api_token=TOKEN, transport=transport)
        ref = _api.ref_of(kind)

        async def call() -> object:
            return await client.async_run(ref, input=_api.INPUT)

    _api.RECORD = True
    first = await call()
    requests = list(_api.REQUESTS)
    _api.RECORD = False
    check(_api.output_matches(first), f"unexpected output: {first!r}")

    walls: list[float] = []
    cpus: list[float] = []
    rounds = 2 if quick else 7
    for _ in range(rounds):
        start = time.perf_counter()
        cpu0 = time.process_time()
        results = await asyncio.gather(*(call() for _ in range(CONCURRENCY)))
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu0)
        check(len(results) == CONCURRENCY, "missing results")
        check(all(_api.output_matches(r) for r in results), "unexpected output in a result")
    return {
        "value": min(walls),
        "median": statistics.median(walls),
        "rounds": [round(w, 4) for w in walls],
        "cpu_s": min(cpus),
        "cpu_rounds": [round(c, 4) for c in cpus],
        "concurrency": CONCURRENCY,
        "handler_delay_s": DELAY_S,
        "requests": requests,
    }


def main() -> None:
    args = parse_args(__doc__ or "", refs=_api.REFS)
    figures = asyncio.run(measure(args.quick, args.impl, args.ref))
    result = environment(args.impl)
    scenario = "async_run" if args.ref == "version" else "async_run_model"
    result.update(scenario=scenario, ref=args.ref, metric="wall_s", **figures)
    emit(result)


if __name__ == "__main__":
    main()
