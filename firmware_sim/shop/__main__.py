"""``python -m firmware_sim.shop`` runs the reference shop (``reorder-shop``)."""

import sys

from firmware_sim.shop.server import main

sys.exit(main())
