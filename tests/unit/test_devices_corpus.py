"""Real payloads, collected from upstream sources, through every profile.

Each entry of ``tests/fixtures/devices/corpus.json`` names its source, the
model, the topic, the payload and the meaning it must parse to. Under its own
profile it must parse to exactly that; under every other profile it must never
make a press (no false order from any real payload).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devices import (
    DeviceAction,
    DeviceReading,
    Parsed,
    ParseError,
    ProfileOptions,
    get_profile,
    profile_names,
)
from devices.actions import ActionMap

CORPUS = Path(__file__).parents[1] / "fixtures" / "devices" / "corpus.json"
ENTRIES: list[dict[str, Any]] = json.loads(CORPUS.read_text())["entries"]
IDS = [f"{i}-{e['profile']}-{e['model'][:20]}-{e['payload'][:30]}" for i, e in enumerate(ENTRIES)]


def _options(entry: dict[str, Any]) -> ProfileOptions:
    raw = dict(entry["options"])
    if "actions" in raw:
        raw["actions"] = ActionMap.from_config(raw["actions"])
    return ProfileOptions(**raw)


def _parse(name: str, entry: dict[str, Any], options: ProfileOptions) -> list[Parsed]:
    return get_profile(name).parse(entry["topic"], entry["payload"].encode(), options)


def test_the_corpus_covers_every_button_family_and_names_each_source() -> None:
    assert {e["profile"] for e in ENTRIES} == {"zigbee2mqtt", "tasmota", "shelly", "esphome"}
    for entry in ENTRIES:
        source = entry["source"]
        assert ("repo" in source and "path" in source and len(source["commit"]) == 40) or (
            source.get("url", "").startswith("https://")
        ), entry
        assert entry["meaning"] in ("press", "hold", "ignored", "nothing", "reading")


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_each_entry_means_what_it_says_under_its_own_profile(entry: dict[str, Any]) -> None:
    got = _parse(entry["profile"], entry, _options(entry))
    meaning = entry["meaning"]
    if meaning == "nothing":
        assert got == []
    elif meaning == "reading":
        assert got == [DeviceReading(entry["value"])]
    else:
        [item] = got
        assert isinstance(item, DeviceAction)
        assert item.action == {"press": "press", "hold": "hold", "ignored": "other"}[meaning]
        # An ignored action is ignored by name, never silently.
        assert item.raw and item.raw in entry["payload"]
        assert item.event_id == entry.get("event_id")


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_no_entry_presses_under_any_other_profile(entry: dict[str, Any]) -> None:
    others = [name for name in profile_names() if name != entry["profile"]]
    for options in (_options(entry), ProfileOptions()):
        for name in others:
            try:
                got = _parse(name, entry, options)
            except ParseError:
                continue
            presses = [i for i in got if isinstance(i, DeviceAction) and i.action == "press"]
            assert not presses, (name, entry["payload"])
