"""Scenario: 1,000 concurrent ``client.async_run(...)`` over a MockTransport that sleeps 20 ms.

The handler is an ``async def`` that awaits ``asyncio.sleep(0.02)`` before answering like the
fake API of ``_api.py`` (create -> 201 succeeded; version lookup answered). One client, one event
loop; one warm-up run, then ``rounds`` x ``asyncio.gather`` of 1,000 runs. ``--ref version``
(default) runs ``owner/name:version``, ``--ref model`` runs ``owner/name``. ``--impl httpx``
sends the same one create request by hand with one ``httpx.AsyncClient`` (the floor). With
``--impl ours,httpx`` both run in this process, their rounds interleaved. Figure: wall time of one gather in
seconds (best round; lower is better).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import _api
import httpx
from _common import BASE_URL, TOKEN, check, emit_joint, environment, parse_args

CONCURRENCY = 1000
DELAY_S = 0.02


async def make_call(impl: str, kind: str) -> tuple[Callable[[], Awaitable[object]], list[str]]:
    """The call measured for ``impl`` (over its own transport), and the requests of one call."""
    transport = httpx.MockTransport(_api.make_async_route(DELAY_S))
    call: Callable[[], Awaitable[object]]
    if impl == "httpx":
        http = httpx.AsyncClient(
            base_url=BASE_URL,
            transport=transport,
            headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": "benchmark"},
        )
        path, body = _api.raw_create(kind)

        async def post() -> object:
            response = await http.post(path, json=body, headers={"Prefer": "wait"})
            response.raise_for_status()
            data = response.json()
            if data["status"] != "succeeded":
                raise RuntimeError(data["status"])
            return data["output"]

        call = post
    else:
        import replicate

        client = replicate.Client(api_token=TOKEN, transport=transport)
        ref = _api.ref_of(kind)

        async def run() -> object:
            return await client.async_run(ref, input=_api.INPUT)

        call = run

    _api.RECORD = True
    _api.REQUESTS.clear()
    first = await call()
    requests = list(_api.REQUESTS)
    _api.RECORD = False
    check(_api.output_matches(first), f"unexpected output: {first!r}")
    return call, requests


async def measure(quick: bool, impls: list[str], kind: str) -> dict[str, dict[str, object]]:
    calls = {impl: await make_call(impl, kind) for impl in impls}
    walls: dict[str, list[float]] = {impl: [] for impl in impls}
    cpus: dict[str, list[float]] = {impl: [] for impl in impls}
    rounds = 2 if quick else 7
    for _ in range(rounds):
        for impl, (call, _) in calls.items():  # interleaved rounds
            start = time.perf_counter()
            cpu0 = time.process_time()
            results = await asyncio.gather(*(call() for _ in range(CONCURRENCY)))
            walls[impl].append(time.perf_counter() - start)
            cpus[impl].append(time.process_time() - cpu0)
            check(len(results) == CONCURRENCY, "missing results")
            check(all(_api.output_matches(r) for r in results), "unexpected output in a result")
    return {
        impl: {
            "value": min(walls[impl]),
            "median": statistics.median(walls[impl]),
            "rounds": [round(w, 4) for w in walls[impl]],
            "cpu_s": min(cpus[impl]),
            "cpu_rounds": [round(c, 4) for c in cpus[impl]],
            "concurrency": CONCURRENCY,
            "handler_delay_s": DELAY_S,
            "requests": calls[impl][1],
        }
        for impl in impls
    }


def main() -> None:
    args = parse_args(__doc__ or "", refs=_api.REFS)
    impls = args.impl.split(",")
    figures = asyncio.run(measure(args.quick, impls, args.ref))
    scenario = "async_run" if args.ref == "version" else "async_run_model"
    results = {}
    for impl in impls:
        result = environment(impl)
        result.update(scenario=scenario, ref=args.ref, metric="wall_s", **figures[impl])
        results[impl] = result
    emit_joint(results)


if __name__ == "__main__":
    main()
