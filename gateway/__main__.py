"""``python -m gateway`` is the same as ``reorder-gateway``."""

from gateway.ops.cli import main

raise SystemExit(main())
