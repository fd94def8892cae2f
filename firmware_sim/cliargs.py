"""Argument types shared by the simulator's commands (reorder-shop, reorder-sim, the demo).

>>> positive_number("600")
600.0
"""

from __future__ import annotations

import argparse


def positive_number(text: str) -> float:
    """An argparse type: a number above zero, or a usage error that says so."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive number")
    return value
