"""``python -m replicate``: the command line."""

from replicate.cli import main

raise SystemExit(main())
