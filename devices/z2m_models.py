"""Known Zigbee2MQTT models: each button's action words, as data.

In the style of Zigbee2MQTT's own device definitions (zigbee-herdsman-converters
``src/devices/<vendor>.ts``): one :class:`ZigbeeModel` per model, naming the
upstream file it was read from. A :class:`Button` maps the words one button
sends, and records what a short and a long press publish, so a test can hold
every model to the rule that matters most: a short press orders exactly once
and a long press never orders (the button-down half of a press is never the
press when a release follows).

Words were read from zigbee-herdsman-converters at commit
``df7200535e381f70023013f96791e424b6ac7b0e`` (``SOURCE_COMMIT``).

>>> hue = get_model("324131092621")
>>> hue.button("up").actions.canonical("up_press_release")
'press'
>>> get_model("TS0044").button(None).name
'1'
>>> get_model("E1743x")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
KeyError: "unknown Zigbee2MQTT model 'E1743x': did you mean 'E1743'? ..."
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from devices.actions import ActionMap

SOURCE_REPO = "Koenkk/zigbee-herdsman-converters"
SOURCE_COMMIT = "df7200535e381f70023013f96791e424b6ac7b0e"


@dataclass(frozen=True)
class Button:
    """One button of a model: its words and what a short and a long press send."""

    name: str
    actions: ActionMap
    short_press: tuple[str, ...]  # the words one short press publishes, in order
    long_press: tuple[str, ...]  # the words a long press publishes (hold may repeat)


@dataclass(frozen=True)
class ZigbeeModel:
    """A Zigbee2MQTT model (its ``model`` string) and its buttons; the first is the default."""

    model: str
    vendor: str
    description: str
    buttons: tuple[Button, ...]
    source: str  # file in SOURCE_REPO the words come from
    notes: str = ""

    def button(self, name: str | None) -> Button:
        """The button called ``name``; the model's first button for None."""
        if name is None:
            return self.buttons[0]
        for button in self.buttons:
            if button.name == name:
                return button
        valid = ", ".join(b.name for b in self.buttons)
        raise KeyError(f"{self.model} has no button {name!r}: its buttons are {valid}")


# --------------------------------------------------------------------------- builders


def _simple(name: str, press: str, cancel: str, ignore: tuple[str, ...] = ()) -> Button:
    """A button whose long press sends one word of its own (no release)."""
    return Button(
        name,
        ActionMap(press=(press,), cancel=(cancel,), ignore=ignore),
        short_press=(press,),
        long_press=(cancel,),
    )


def _held(name: str, press: str, cancel: str, release: str, ignore: tuple[str, ...] = ()) -> Button:
    """A short press sends ``press``; a long press ``cancel`` then ``release``."""
    return Button(
        name,
        ActionMap(press=(press,), cancel=(cancel,), release=(release,), ignore=ignore),
        short_press=(press,),
        long_press=(cancel, release),
    )


def _hue(button: str) -> Button:
    # philips.fz.hue_dimmer_switch: type 0 press, 1 hold (repeats), 2
    # press_release, 3 hold_release. "<b>_press" comes first on every press, long
    # ones too: only the short release may order.
    return Button(
        button,
        ActionMap(
            press=(f"{button}_press_release",),
            cancel=(f"{button}_hold",),
            release=(f"{button}_hold_release",),
            ignore=(f"{button}_press",),
        ),
        short_press=(f"{button}_press", f"{button}_press_release"),
        long_press=(
            f"{button}_press",
            f"{button}_hold",
            f"{button}_hold",
            f"{button}_hold_release",
        ),
    )


def _ikea_arrow(side: str) -> Button:
    # ikeaArrowClick: arrow_<side>_click, or arrow_<side>_hold then _release.
    return _held(side, f"arrow_{side}_click", f"arrow_{side}_hold", f"arrow_{side}_release")


def _ikea_dots(dots: str) -> Button:
    # ikeaDotsClick(dotsPrefix): initial_press on every press, then short_release
    # or long_press + long_release; double_press for two presses.
    word = f"dots_{dots}"
    return Button(
        dots,
        ActionMap(
            press=(f"{word}_short_release",),
            cancel=(f"{word}_long_press",),
            release=(f"{word}_long_release",),
            ignore=(f"{word}_initial_press", f"{word}_double_press"),
        ),
        short_press=(f"{word}_initial_press", f"{word}_short_release"),
        long_press=(f"{word}_initial_press", f"{word}_long_press", f"{word}_long_release"),
    )


def _aqara_rocker(side: str, *, triple: bool = False) -> Button:
    # lumi_action / lumi_action_multistate: <kind>_<left|right|both>.
    ignore = (f"double_{side}",) + ((f"triple_{side}",) if triple else ())
    return _simple(side, f"single_{side}", f"hold_{side}", ignore)


def _tuya(index: int) -> Button:
    # tuya.fz.on_off_action: "<endpoint>_<single|double|hold>".
    return _simple(str(index), f"{index}_single", f"{index}_hold", (f"{index}_double",))


_ON_OFF_MOVE = "brightness_stop"

MODELS: tuple[ZigbeeModel, ...] = (
    # IKEA (src/devices/ikea.ts)
    ZigbeeModel(
        "E1743",
        "IKEA",
        "TRADFRI on/off switch",
        (
            _held("on", "on", "brightness_move_up", _ON_OFF_MOVE),
            _held("off", "off", "brightness_move_down", _ON_OFF_MOVE),
        ),
        "src/devices/ikea.ts",
        "holding a button dims (brightness_move_*), letting go sends brightness_stop",
    ),
    ZigbeeModel(
        "E1524/E1810",
        "IKEA",
        "TRADFRI remote control",
        (
            _simple("toggle", "toggle", "toggle_hold"),
            _held(
                "brightness_up",
                "brightness_up_click",
                "brightness_up_hold",
                "brightness_up_release",
            ),
            _held(
                "brightness_down",
                "brightness_down_click",
                "brightness_down_hold",
                "brightness_down_release",
            ),
            _ikea_arrow("left"),
            _ikea_arrow("right"),
        ),
        "src/lib/ikea.ts",
        "tradfriCommandsOnOff, tradfriCommandsLevelCtrl, ikeaArrowClick",
    ),
    ZigbeeModel(
        "E2001/E2002/E2313",
        "IKEA",
        "STYRBAR remote control",
        (
            _held("on", "on", "brightness_move_up", _ON_OFF_MOVE),
            _held("off", "off", "brightness_move_down", _ON_OFF_MOVE),
            _ikea_arrow("left"),
            _ikea_arrow("right"),
        ),
        "src/devices/ikea.ts",
        "Zigbee2MQTT drops the 'on' STYRBAR sends just after an arrow release",
    ),
    ZigbeeModel(
        "E1812",
        "IKEA",
        "TRADFRI shortcut button",
        (_held("button", "on", "brightness_move_up", _ON_OFF_MOVE, ignore=("off",)),),
        "src/devices/ikea.ts",
        "commands on, off, brightness_move_up, brightness_stop",
    ),
    ZigbeeModel(
        "E2123",
        "IKEA",
        "SYMFONISK sound remote, gen 2",
        (_ikea_dots("1"), _ikea_dots("2")),
        "src/lib/ikea.ts",
        "the dot buttons (ikeaDotsClick); play and volume keys are ignored",
    ),
    # Philips (src/devices/philips.ts)
    ZigbeeModel(
        "324131092621",
        "Philips",
        "Hue dimmer switch gen 1",
        tuple(_hue(b) for b in ("on", "up", "down", "off")),
        "src/devices/philips.ts",
        "every press starts with `<button>_press`: only `<button>_press_release` orders",
    ),
    ZigbeeModel(
        "929002398602",
        "Philips",
        "Hue dimmer switch gen 2",
        tuple(_hue(b) for b in ("on", "up", "down", "off")),
        "src/devices/philips.ts",
        "every press starts with `<button>_press`: only `<button>_press_release` orders",
    ),
    ZigbeeModel(
        "8718699693985",
        "Philips",
        "Hue smart button",
        (
            Button(
                "button",
                ActionMap(
                    press=("on", "off"),
                    cancel=("hold",),
                    release=("release",),
                    ignore=("press", "skip_backward", "skip_forward"),
                ),
                short_press=("press", "on", "release"),
                long_press=("press", "hold", "hold", "release"),
            ),
        ),
        "src/devices/philips.ts",
        "press/release come with short and long presses alike (hue_smart_button_event); "
        "a short press also sends on or off, which orders",
    ),
    # Aqara / Xiaomi (src/devices/lumi.ts)
    ZigbeeModel(
        "WXKG01LM",
        "Xiaomi",
        "Mi wireless switch",
        (
            _held(
                "button",
                "single",
                "hold",
                "release",
                ignore=("double", "triple", "quadruple", "many"),
            ),
        ),
        "src/devices/lumi.ts",
        "hold after 1 s without release (lumi_action_WXKG01LM)",
    ),
    ZigbeeModel(
        "WXKG11LM",
        "Aqara",
        "Wireless mini switch",
        (_held("button", "single", "hold", "release", ignore=("double", "triple", "quadruple")),),
        "src/devices/lumi.ts",
    ),
    ZigbeeModel(
        "WXKG12LM",
        "Aqara",
        "Wireless mini switch (with gyroscope)",
        (_held("button", "single", "hold", "release", ignore=("double", "shake")),),
        "src/devices/lumi.ts",
    ),
    ZigbeeModel(
        "WXKG02LM_rev2",
        "Aqara",
        "Wireless remote switch (double rocker), 2018 model",
        tuple(_aqara_rocker(side) for side in ("left", "right", "both")),
        "src/devices/lumi.ts",
    ),
    ZigbeeModel(
        "WXKG07LM",
        "Aqara",
        "Wireless remote switch D1 (double rocker)",
        tuple(_aqara_rocker(side) for side in ("left", "right", "both")),
        "src/devices/lumi.ts",
    ),
    ZigbeeModel(
        "WXKG15LM",
        "Aqara",
        "Wireless remote switch H1 (double rocker)",
        tuple(_aqara_rocker(side, triple=True) for side in ("left", "right", "both")),
        "src/devices/lumi.ts",
        "click_mode fast sends single only: set click_mode multi for hold",
    ),
    # SONOFF (src/devices/sonoff.ts)
    ZigbeeModel(
        "SNZB-01",
        "SONOFF",
        "Wireless button",
        (_simple("button", "single", "long", ("double",)),),
        "src/devices/sonoff.ts",
    ),
    # Tuya (src/devices/tuya.ts)
    ZigbeeModel(
        "TS0041",
        "Tuya",
        "Wireless switch with 1 button",
        (_simple("1", "single", "hold", ("double",)),),
        "src/devices/tuya.ts",
    ),
    *(
        ZigbeeModel(
            f"TS004{count}",
            "Tuya",
            f"Wireless switch with {count} buttons",
            tuple(_tuya(index) for index in range(1, count + 1)),
            "src/devices/tuya.ts",
        )
        for count in (2, 3, 4)
    ),
)

_BY_MODEL = {model.model: model for model in MODELS}


def model_names() -> list[str]:
    """Every known model string, sorted."""
    return sorted(_BY_MODEL)


def models_saying(word: str) -> list[tuple[ZigbeeModel, Button, Literal["press", "cancel"]]]:
    """Every (model, button, role) whose press or cancel words hold ``word``.

    >>> [(m.model, b.name, role) for m, b, role in models_saying("2_single")][:2]
    [('TS0042', '2', 'press'), ('TS0043', '2', 'press')]
    """
    found: list[tuple[ZigbeeModel, Button, Literal["press", "cancel"]]] = []
    for model in MODELS:
        for button in model.buttons:
            if word in button.actions.press:
                found.append((model, button, "press"))
            elif word in button.actions.cancel:
                found.append((model, button, "cancel"))
    return found


def get_model(name: str) -> ZigbeeModel:
    """The model called ``name`` (as Zigbee2MQTT spells it); KeyError with a hint otherwise."""
    try:
        return _BY_MODEL[name]
    except KeyError:
        close = difflib.get_close_matches(name, _BY_MODEL, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise KeyError(
            f"unknown Zigbee2MQTT model {name!r}: {hint}known models: {', '.join(model_names())}; "
            "or give the words yourself with actions:"
        ) from None
