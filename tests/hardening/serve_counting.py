"""A local server in its own process (so its RSS is its own) with one counting model.

Run as ``python serve_counting.py DB COUNT_FILE [CONCURRENCY]``: prints the base URL, serves
until stdin closes. ``load/echo(n)`` appends ``n`` to COUNT_FILE (one line per run, so a
test can check every prediction ran exactly once) and returns it.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    from replicate.local.server import LocalServer

    db, count_path = sys.argv[1], sys.argv[2]
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    fd = os.open(count_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def echo(n: int) -> int:
        os.write(fd, f"{n}\n".encode())
        return n

    with LocalServer(
        db=db, token="r8_load", retention="never", demo_models=False, test_controls=True
    ) as server:
        server.register("load/echo", echo, concurrency=concurrency)
        print(server.base_url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
