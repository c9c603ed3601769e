"""``python -m replicate.local``: run the local server."""

from .cli import main

main()
