"""``python -m autotrace``: the CLI."""

from .cli import main

raise SystemExit(main())
