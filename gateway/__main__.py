"""``python -m gateway`` is the same as ``reorder-gateway``."""

from gateway.cli import main

raise SystemExit(main())
