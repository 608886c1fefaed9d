"""``python -m ff_mcp`` is the ``ff-mcp`` command."""

from ff_mcp.cli import main

raise SystemExit(main())
