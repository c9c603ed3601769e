"""Run the Cog runtime and stop it when the local server goes away.

Usage: ``python supervise.py COMMAND...`` with a pipe from the server on stdin. The
command runs with stdin closed; when our stdin reaches end-of-file (the server exited,
even by SIGKILL) the whole process group (this script, the runtime and the runtime's own
worker) is terminated. Exits with the command's exit status. Runs in the model's
interpreter, so it must not import anything from ``replicate``.
"""

import os
import signal
import subprocess
import sys
import threading
import time


def _end_group(child: "subprocess.Popen[bytes]") -> None:
    """SIGTERM the runtime, give it 5 s, then SIGKILL the whole group (us included)."""
    try:
        child.terminate()
    except OSError:
        pass
    deadline = time.monotonic() + 5.0
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        os.killpg(os.getpgid(0), signal.SIGKILL)
    except OSError:
        pass


def main(argv: list) -> int:
    if not argv:
        print("usage: supervise.py COMMAND...", file=sys.stderr)
        return 2
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)

    def watch_parent() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        if child.poll() is None:
            _end_group(child)

    threading.Thread(target=watch_parent, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda signum, frame: child.terminate())
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
