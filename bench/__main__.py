"""``make bench`` (``python -m bench --help`` for the sizes)."""

from bench.runner import main

raise SystemExit(main())
