"""Scenario files for ``reorder-sim``: YAML in, validated models out.

A scenario names the virtual devices, when their buttons are pressed, how the
sensors drain, and which chaos to inject. Loading keeps every node's line so
that each problem is reported as ``PATH:LINE: where: what — how to fix it``;
all problems are collected, never just the first.

>>> from pathlib import Path
>>> scenario = load_scenario(Path("firmware_sim/scenarios/demo.yaml"))
>>> scenario.gateway_id
'demo'
"""

from __future__ import annotations

import difflib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from gateway.config.models import Duration, Name
from gateway.config.positions import YamlSyntaxError, parse_yaml

_TIME_OF_DAY = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


class ScenarioError(Exception):
    """The scenario file cannot be used. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_time_of_day(value: object) -> float:
    """``"08:30"`` -> seconds after midnight (30600.0).

    >>> parse_time_of_day("06:00:30")
    21630.0
    """
    if not isinstance(value, str):
        raise ValueError('expected a time of day such as "08:00" (quote it)')
    match = _TIME_OF_DAY.match(value)
    if not match:
        raise ValueError(
            f"'{value}' is not a time of day — write HH:MM or HH:MM:SS, e.g. \"08:00\""
        )
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"'{value}' is not a time of day — hours 0-23, minutes 0-59")
    return float(hours * 3600 + minutes * 60 + seconds)


def parse_start(value: object) -> float:
    """``"2026-11-26 06:00"`` -> epoch seconds. Sim calendars have no time zone: UTC.

    >>> parse_start("1970-01-02 00:00")
    86400.0
    """
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp()
    if not isinstance(value, str):
        raise ValueError('expected a date and time such as "2026-11-26 06:00"')
    try:
        naive = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M")
    except ValueError:
        raise ValueError(
            f'\'{value}\' is not a start time — write "YYYY-MM-DD HH:MM", e.g. "2026-11-26 06:00"'
        ) from None
    return naive.replace(tzinfo=UTC).timestamp()


TimeOfDay = Annotated[float, BeforeValidator(parse_time_of_day)]
StartTime = Annotated[float, BeforeValidator(parse_start)]
Rate = Annotated[float, Field(ge=0.0, le=1.0)]
ButtonAction = Literal["press", "hold"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class At(_Model):
    """A moment: a time of day on a day counted from the scenario's start day (0)."""

    at: TimeOfDay
    day: int = Field(default=0, ge=0, le=3650)


class Press(At):
    action: ButtonAction = "press"


class Schedule(_Model):
    """Explicit ``presses``, a repeating ``every`` (from ``first_at``), or both."""

    presses: list[Press] = []
    every: Duration | None = Field(default=None, gt=0)
    first_at: TimeOfDay | None = None
    jitter: Duration = Field(default=0.0, ge=0)
    action: ButtonAction = "press"


class _Device(_Model):
    name: Name


class ReorderButtonSpec(_Device):
    kind: Literal["reorder-button"]
    topic: str = Field(min_length=1)
    schedule: Schedule = Schedule()
    # Share of presses whose PUBACK the firmware "misses": it reconnects and re-sends.
    duplicate_rate: Rate = 0.0
    ack_timeout: Duration = Field(default=5.0, gt=0)


class Zigbee2MqttSpec(_Device):
    kind: Literal["zigbee2mqtt"]
    topic: str | None = None  # default zigbee2mqtt/<name>
    schedule: Schedule = Schedule()
    double_publish: bool = False
    double_gap: Duration = Field(default=0.05, ge=0, le=2.0)
    action_subtopic: bool = False
    status_every: Duration | None = Field(default=None, gt=0)
    press_word: str = "single"
    hold_word: str = "hold"


class TasmotaSpec(_Device):
    kind: Literal["tasmota"]
    topic: str | None = None  # default stat/<name>/RESULT
    button: int = Field(default=1, ge=1, le=8)
    schedule: Schedule = Schedule()


class ShellySpec(_Device):
    kind: Literal["shelly"]
    topic: str | None = None  # default shellies/<name>/input_event/<button-1>
    button: int = Field(default=1, ge=1, le=4)
    schedule: Schedule = Schedule()


class GpioSpec(_Device):
    kind: Literal["gpio"]
    pin: int = Field(ge=0, le=53)
    schedule: Schedule = Schedule()


class ScaleSpec(_Device):
    kind: Literal["scale"]
    topic: str = Field(min_length=1)
    sku: str | None = None
    value_key: str = "weight_g"
    interval: Duration = Field(default=300.0, gt=0)
    full_g: float = Field(default=1000.0, gt=0)
    start_g: float | None = Field(default=None, ge=0)
    use_per_day_g: float = Field(default=60.0, ge=0)
    usage_noise: float = Field(default=0.3, ge=0, le=2.0)
    noise_g: float = Field(default=0.5, ge=0)
    lifts: list[At] = []
    lift_every: Duration | None = Field(default=None, gt=0)


class LevelSpec(_Device):
    kind: Literal["level"]
    topic: str = Field(min_length=1)
    sku: str | None = None
    value_key: str = "level_pct"
    interval: Duration = Field(default=300.0, gt=0)
    start_pct: float = Field(default=100.0, ge=0, le=100)
    full_pct: float = Field(default=100.0, gt=0, le=100)
    per_use_pct: float = Field(default=3.0, ge=0, le=100)
    noise_pct: float = Field(default=0.2, ge=0)
    uses: Schedule = Schedule()


DeviceSpec = Annotated[
    ReorderButtonSpec
    | Zigbee2MqttSpec
    | TasmotaSpec
    | ShellySpec
    | GpioSpec
    | ScaleSpec
    | LevelSpec,
    Field(discriminator="kind"),
]
DEVICE_KINDS = ("reorder-button", "zigbee2mqtt", "tasmota", "shelly", "gpio", "scale", "level")


class Flood(At):
    """``rate`` messages per *real* second for ``seconds`` real seconds (a load test)."""

    device: Name
    rate: float = Field(gt=0, le=5000)
    seconds: float = Field(gt=0, le=60)


class ReconnectStorm(At):
    count: int = Field(ge=1, le=100)


class Chaos(_Model):
    malformed_rate: Rate = 0.0
    flood: list[Flood] = []
    reconnect_storm: list[ReconnectStorm] = []


class ShopSpec(_Model):
    url: str | None = None
    poll: Duration = Field(default=300.0, gt=0)


class Scenario(_Model):
    name: str = Field(min_length=1)
    description: str = ""
    gateway_id: Name = "demo"
    start: StartTime
    duration: Duration = Field(gt=0)
    time_scale: float = Field(default=600.0, gt=0)
    seed: int = 0
    shop: ShopSpec = ShopSpec()
    devices: list[DeviceSpec] = Field(min_length=1)
    chaos: Chaos = Chaos()


# --------------------------------------------------------------------------- loading

Path_ = tuple[str | int, ...]


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario; raise :class:`ScenarioError` with every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read the scenario: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ScenarioError([f"{path}: the scenario is not UTF-8 text"]) from None
    return parse_scenario(text, str(path))


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate scenario YAML given as text; ``source`` names it in messages."""
    # The gateway's own YAML reader: positions, duplicate keys, alias cycles and
    # alias bombs are handled there once.
    try:
        doc = parse_yaml(text, clock_times_as_text=True)
    except YamlSyntaxError as exc:
        problem = exc.problem
        raise ScenarioError([f"{source}:{problem.line}: not valid YAML: {problem.text}"]) from None
    lines: dict[Path_, int] = {path: pos[0] for path, pos in doc.values.items()}
    problems = [f"{source}:{p.line}: {p.text}" for p in doc.problems]
    data = doc.data
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}:1: a scenario is a mapping with name, start, devices, …"])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems.extend(_describe(exc, lines, source))
        raise ScenarioError(problems) from None
    problems.extend(_cross_checks(scenario, lines, source))
    if problems:
        raise ScenarioError(problems)
    return scenario


def _line_for(loc: tuple[str | int, ...], lines: dict[Path_, int]) -> tuple[int, str]:
    path: Path_ = ()
    for part in loc:
        candidate = (*path, part)
        if candidate in lines:
            path = candidate
        # Parts not in the file (a union tag such as "scale") are skipped.
    where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
    return lines.get(path, 1), where or "scenario"


_FIELD_NAMES: dict[str, list[str]] = {
    "": list(Scenario.model_fields),
    "shop": list(ShopSpec.model_fields),
    "chaos": list(Chaos.model_fields),
}


def _describe(exc: ValidationError, lines: dict[Path_, int], source: str) -> list[str]:
    out = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        line, where = _line_for(loc, lines)
        kind = error["type"]
        message = str(error["msg"]).removeprefix("Value error, ")
        if kind == "extra_forbidden":
            message = f"unknown key '{loc[-1]}'" + _suggest(loc, exc)
        elif kind == "union_tag_invalid":
            message = f"unknown device kind — use one of: {', '.join(DEVICE_KINDS)}"
        elif kind == "union_tag_not_found":
            message = f"a device needs a kind: one of {', '.join(DEVICE_KINDS)}"
        elif kind == "too_short" and loc == ("devices",):
            message = "a scenario needs at least one device"
        elif kind == "missing":
            message = f"'{loc[-1]}' is required"
            line, where = _line_for(loc[:-1], lines)
        out.append(f"{source}:{line}: {where}: {message}")
    return out


def _suggest(loc: tuple[str | int, ...], exc: ValidationError) -> str:
    key = str(loc[-1])
    known: list[str] = []
    if len(loc) == 1:
        known = _FIELD_NAMES[""]
    elif len(loc) == 2 and loc[0] in _FIELD_NAMES:
        known = _FIELD_NAMES[str(loc[0])]
    elif len(loc) >= 4 and loc[0] == "devices" and isinstance(loc[2], str):
        spec = _SPECS.get(loc[2])
        known = list(spec.model_fields) if spec else []
    match = difflib.get_close_matches(key, known, n=1)
    return f" — did you mean '{match[0]}'?" if match else ""


_SPECS: dict[str, type[_Model]] = {
    "reorder-button": ReorderButtonSpec,
    "zigbee2mqtt": Zigbee2MqttSpec,
    "tasmota": TasmotaSpec,
    "shelly": ShellySpec,
    "gpio": GpioSpec,
    "scale": ScaleSpec,
    "level": LevelSpec,
}


def device_topic(spec: DeviceSpec, gateway_id: str) -> str:
    """The topic a device publishes its events or readings on."""
    if isinstance(spec, GpioSpec):
        return f"reorder/{gateway_id}/sim/gpio/{spec.pin}"
    if isinstance(spec, Zigbee2MqttSpec):
        return spec.topic or f"zigbee2mqtt/{spec.name}"
    if isinstance(spec, TasmotaSpec):
        return spec.topic or f"stat/{spec.name}/RESULT"
    if isinstance(spec, ShellySpec):
        return spec.topic or f"shellies/{spec.name}/input_event/{spec.button - 1}"
    return spec.topic


def _cross_checks(scenario: Scenario, lines: dict[Path_, int], source: str) -> list[str]:
    problems = []
    names: dict[str, int] = {}
    topics: dict[str, int] = {}
    for index, spec in enumerate(scenario.devices):
        line = lines.get(("devices", index), 1)
        if spec.name in names:
            problems.append(
                f"{source}:{line}: devices[{index}].name: '{spec.name}' is already used by "
                f"devices[{names[spec.name]}] — device names must be unique"
            )
        names.setdefault(spec.name, index)
        topic = device_topic(spec, scenario.gateway_id)
        if topic in topics:
            problems.append(
                f"{source}:{line}: devices[{index}]: topic '{topic}' is already used by "
                f"devices[{topics[topic]}] — give each device its own topic or pin"
            )
        topics.setdefault(topic, index)
        if any(ch in topic for ch in "+#\x00") or topic.startswith("$"):
            problems.append(
                f"{source}:{line}: devices[{index}]: '{topic}' is not a topic one can publish "
                "to — no wildcards (+ #), no leading $"
            )
    for index, flood in enumerate(scenario.chaos.flood):
        if flood.device not in names:
            line = lines.get(("chaos", "flood", index, "device"), 1)
            hint = difflib.get_close_matches(flood.device, list(names), n=1)
            suggestion = f" — did you mean '{hint[0]}'?" if hint else ""
            problems.append(
                f"{source}:{line}: chaos.flood[{index}].device: no device named "
                f"'{flood.device}'{suggestion}"
            )
    return problems
