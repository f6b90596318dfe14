"""``python -m api.cli``: the ``contracts`` command."""

from api.cli import main

raise SystemExit(main())
