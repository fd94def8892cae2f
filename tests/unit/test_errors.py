"""One error tree: every gateway exception under GatewayError, drawn as it is, no tracebacks."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gateway
import gateway.errors
from gateway.errors import GatewayError

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(gateway.__path__, "gateway.")
    if not info.name.endswith("__main__")
)


def _exceptions_defined_in(module_name: str) -> list[type[BaseException]]:
    module = importlib.import_module(module_name)
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == module_name
    ]


@pytest.mark.parametrize("module_name", MODULES)
def test_every_exception_the_gateway_defines_derives_from_the_root(module_name: str) -> None:
    strays = [
        cls.__qualname__
        for cls in _exceptions_defined_in(module_name)
        if not issubclass(cls, GatewayError)
    ]
    assert strays == [], f"{module_name} defines {strays} outside gateway.errors.GatewayError"


def test_the_tree_is_defined_in_one_module() -> None:
    elsewhere = {
        name: [cls.__name__ for cls in _exceptions_defined_in(name)]
        for name in MODULES
        if name != "gateway.errors"
    }
    assert {name: found for name, found in elsewhere.items() if found} == {}


# "    │   ├── BrokerUrlError (ValueError) ``mqtt.url`` is ..." -> depth 2, name, mixins
_TREE_LINE = re.compile(
    r"^    (?P<indent>(?:│   |    )*)(?:├── |└── )?(?P<name>[A-Z]\w+)(?: \((?P<mixins>[\w, ]+)\))?"
)


def _drawn_tree() -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """name -> (parent, mixins) as the module docstring draws them."""
    doc = gateway.errors.__doc__ or ""
    drawing = doc.split("Exception tree::\n\n", 1)[1].split("\n\n", 1)[0]
    drawn: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    parents: list[str] = []
    for line in drawing.splitlines():
        match = _TREE_LINE.match(line)
        if match is None:
            continue  # a description carried over to the next line
        depth = len(match["indent"]) // 4 + (0 if line.startswith("    Gateway") else 1)
        del parents[depth:]
        mixins = tuple(m.strip() for m in match["mixins"].split(",")) if match["mixins"] else ()
        drawn[match["name"]] = (parents[-1] if parents else None, mixins)
        parents.append(match["name"])
    return drawn


def test_the_docstring_draws_every_class_of_the_tree_where_it_is() -> None:
    defined = {
        cls.__name__: (
            None if cls is GatewayError else cls.__bases__[0].__name__,
            tuple(base.__name__ for base in cls.__bases__[1:]),
        )
        for cls in _exceptions_defined_in("gateway.errors")
    }
    assert GatewayError.__bases__ == (Exception,)
    assert _drawn_tree() == defined


def _gateway(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        check=False,
        cwd=cwd,
        env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "gw.yaml"
    path.write_text(
        f"gateway:\n  id: home\n  state_dir: {tmp_path / 'state'}\n"
        "commerce:\n  base_url: https://shop.example/api/v1\n  token: t\n"
        "products:\n  coffee:\n    sku: LAVAZZA-1KG\n" + extra
    )
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("command", ["check", "run", "queue", "status"])
def test_a_configuration_problem_is_located_lines_and_exit_2(tmp_path: Path, command: str) -> None:
    path = _config(tmp_path, "  tea:\n    sku: 7\n    quantiy: 2\n")
    done = _gateway(command, "--config", str(path))
    assert done.returncode == 2
    assert f"{path}:12:5: products.tea.quantiy: unknown key 'quantiy' — did you mean" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_a_missing_configuration_file_is_one_line(tmp_path: Path) -> None:
    done = _gateway("run", "--config", str(tmp_path / "absent.yaml"))
    assert done.returncode == 2
    assert (
        done.stderr.splitlines()[0]
        == f"{tmp_path / 'absent.yaml'}: cannot read: No such file or directory"
    )
    assert "Traceback" not in done.stdout + done.stderr


def test_a_queue_without_an_outbox_says_so_in_one_line(tmp_path: Path) -> None:
    done = _gateway("queue", "--config", str(_config(tmp_path)))
    assert done.returncode == 1
    assert done.stdout.startswith(f"no outbox at {tmp_path / 'state'}")
    assert len(done.stdout.splitlines()) == 1 and "Traceback" not in done.stderr


def test_an_install_that_cannot_write_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.write_text("a file where a directory must be")
    done = _gateway("install-service", "--root", str(root), "--exec", "/usr/bin/true")
    assert done.returncode == 1
    assert done.stderr.startswith("reorder-gateway install-service: ")
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
