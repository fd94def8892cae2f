"""The one "did you mean …?" of the configuration: a misspelt name gets the closest
valid one, or the list to choose from.

>>> suggest("cofee", ["coffee", "detergent"], otherwise="use one of: coffee, detergent")
"did you mean 'coffee'?"
>>> suggest("tea", ["coffee", "detergent"], otherwise="use one of: coffee, detergent")
'use one of: coffee, detergent'
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "suggest"]


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like ``word``, or None when none is close enough.

    >>> closest("buttons", ["button", "sensors"])
    'button'
    """
    found = difflib.get_close_matches(word, list(choices), n=1)
    return found[0] if found else None


def suggest(word: str, choices: Iterable[str], *, otherwise: str, listing: str = "") -> str:
    """``did you mean 'x'?`` (then `` (listing)`` when given), or ``otherwise``.

    >>> suggest("jsn", ["json", "tasmota"], listing="valid profiles: json, tasmota", otherwise="")
    "did you mean 'json'? (valid profiles: json, tasmota)"
    """
    match = closest(word, choices)
    if match is None:
        return otherwise
    return f"did you mean '{match}'?" + (f" ({listing})" if listing else "")
