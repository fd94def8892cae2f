"""Every Zigbee2MQTT model definition keeps its promises, and the devices page
shows exactly what the definitions say."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices import DeviceAction, ProfileOptions, get_profile
from devices.actions import ActionMap, ActionMapError
from devices.table import FAMILIES, render_table, splice
from devices.z2m_models import MODELS, get_model, model_names
from devices.zigbee2mqtt import action_map

Z2M = get_profile("zigbee2mqtt")
DOCS = Path(__file__).parents[2] / "docs" / "devices.md"
CASES = [(m.model, b.name) for m in MODELS for b in m.buttons]
IDS = [f"{model}:{button}" for model, button in CASES]


def _actions(words: tuple[str, ...], options: ProfileOptions) -> list[str]:
    out = []
    for word in words:
        [item] = Z2M.parse("zigbee2mqtt/hall", b'{"action": "%s"}' % word.encode(), options)
        assert isinstance(item, DeviceAction) and item.raw == word
        out.append(item.action)
    return out


def test_model_names_are_unique() -> None:
    assert len(model_names()) == len(MODELS)
    for model in MODELS:
        assert len({b.name for b in model.buttons}) == len(model.buttons)
        assert model.source.startswith("src/")


@pytest.mark.parametrize(("model", "button"), CASES, ids=IDS)
def test_a_short_press_orders_once_and_a_long_press_never(model: str, button: str) -> None:
    options = ProfileOptions(model=model, button=button)
    definition = get_model(model).button(button)
    assert _actions(definition.short_press, options).count("press") == 1
    long_press = _actions(definition.long_press, options)
    assert "press" not in long_press
    assert "hold" in long_press


@pytest.mark.parametrize(("model", "button"), CASES, ids=IDS)
def test_every_word_parses_to_its_role_and_other_buttons_never_order(
    model: str, button: str
) -> None:
    options = ProfileOptions(model=model, button=button)
    words = action_map(options)
    assert _actions(words.press, options) == ["press"] * len(words.press)
    assert _actions(words.cancel, options) == ["hold"] * len(words.cancel)
    assert set(_actions(words.release + words.ignore, options)) <= {"other"}
    for other in get_model(model).buttons:
        if other.name != button:
            assert "press" not in _actions(other.actions.press, options)


@pytest.mark.parametrize(("model", "button"), CASES, ids=IDS)
def test_model_words_encode_and_parse_back(model: str, button: str) -> None:
    options = ProfileOptions(model=model, button=button)
    words = action_map(options)
    for action, word in (("press", words.press[0]), *(("hold", w) for w in words.cancel[:1])):
        meaning = DeviceAction("press" if action == "press" else "hold", word)
        for message in Z2M.encode(meaning, options, {"battery": 90}):
            assert Z2M.parse(message.topic("zigbee2mqtt/hall"), message.payload, options) == [
                meaning
            ]


def test_the_default_button_is_the_first() -> None:
    hue = ProfileOptions(model="929002398602")
    assert _actions(("on_press_release", "up_press_release"), hue) == ["press", "other"]


def test_a_bad_model_or_button_is_invalid_with_the_fix() -> None:
    from devices import ParseError

    with pytest.raises(ParseError, match="did you mean 'TS0044'"):
        Z2M.parse("z/b", b'{"action": "1_single"}', ProfileOptions(model="TS0045"))
    with pytest.raises(ParseError, match="its buttons are 1, 2, 3, 4"):
        Z2M.parse("z/b", b'{"action": "1_single"}', ProfileOptions(model="TS0044", button="5"))
    with pytest.raises(ParseError, match="needs model:"):
        Z2M.parse("z/b", b'{"action": "1_single"}', ProfileOptions(button="left"))


def test_an_explicit_map_replaces_the_model_words() -> None:
    mine = ActionMap.from_config({"press": ["double"], "cancel": ["single"]})
    options = ProfileOptions(model="SNZB-01", actions=mine)
    assert _actions(("double", "single", "long"), options) == ["press", "hold", "other"]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"press": ["a"], "cancel": ["a"]}, "'a' is both a press and a cancel word"),
        ({"cancel": ["a"]}, "has no press word"),
        ({"press": ["a"], "hold": ["b"]}, "unknown key 'hold'"),
        ({"press": [1]}, "must be a word or a list of words"),
        ({"press": [""]}, "is not a device word"),
    ],
)
def test_an_action_map_that_cannot_work_is_refused(data: dict[str, object], problem: str) -> None:
    with pytest.raises(ActionMapError, match=problem):
        ActionMap.from_config(data)


def test_the_devices_page_shows_the_generated_table() -> None:
    page = DOCS.read_text()
    assert splice(page) == page, "docs/devices.md is stale: run scripts/devices-table"
    for model in MODELS:
        assert f"{model.vendor} {model.model}" in render_table()


def test_every_model_of_the_corpus_is_on_the_devices_page_with_its_words() -> None:
    # The page lists each tested model: a Zigbee2MQTT model by its definition, any
    # other by the family row that names it; a press or cancel of the corpus under
    # the default options must be a word the row shows.
    from tests.unit.test_devices_corpus import ENTRIES, _options, _parse

    rows = {name: family for family in FAMILIES for name in family.tested}
    for entry in ENTRIES:
        model = entry["options"].get("model")
        if model is not None:
            assert any(model == m.model for m in MODELS), entry
            continue
        family = rows.get(entry["model"])
        assert family is not None, f"{entry['model']!r} is not on the devices page"
        assert family.profile == entry["profile"]
        if entry["meaning"] not in ("press", "hold") or entry["options"]:
            continue
        [item] = _parse(entry["profile"], entry, _options(entry))
        assert isinstance(item, DeviceAction)
        words = family.press if entry["meaning"] == "press" else family.cancel
        assert item.raw in words, (entry["model"], item.raw, words)
    named = {name for family in FAMILIES for name in family.tested}
    assert named <= {e["model"] for e in ENTRIES}, "a row names a model the corpus lacks"


def test_splice_needs_the_markers() -> None:
    with pytest.raises(ValueError, match="devices-table:begin"):
        splice("no table here")
