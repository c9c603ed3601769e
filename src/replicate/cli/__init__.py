"""The ``replicate`` command line (``replicate --help``).

Imported only when the console script runs; ``import replicate`` never loads it.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``replicate`` console script."""
    from ._main import main as _main

    return _main(argv)
