"""``reorder-gateway`` — run | check | listen | queue | status | web-password | install-service |
uninstall-service.

Exit codes: 0 success, 1 runtime failure (with a one-line reason, never a
traceback), 2 invalid configuration or usage; ``status`` exits 3 when the
gateway is not running (as ``systemctl status`` does).

Every command's errors meet in :func:`main`, which catches the root of
:mod:`gateway.errors` once: a :class:`~gateway.errors.ConfigError` prints its
located lines, any other :class:`~gateway.errors.GatewayError` one line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway import __version__
from gateway.clock import RealClock, make_clock
from gateway.config.load import check_command, load_config
from gateway.config.models import Config
from gateway.errors import ConfigError, GatewayError
from gateway.ops.logs import setup_logging

DEFAULT_CONFIG = "/etc/reorder-gateway/gateway.yaml"
log = logging.getLogger("gateway")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reorder-gateway",
        description="Buttons and sensors in, exactly one reorder out.",
    )
    p.add_argument("--version", action="version", version=f"reorder-gateway {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--config", "-c", default=DEFAULT_CONFIG, help=f"YAML file (default {DEFAULT_CONFIG})"
        )

    run = sub.add_parser("run", help="run the gateway (foreground; systemd runs this)")
    with_config(run)
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", default="text", choices=["text", "json"])
    # Demos and tests only: the production config has no such setting.
    run.add_argument("--time-scale", type=float, default=None, help=argparse.SUPPRESS)
    run.add_argument("--demo", action="store_true", help=argparse.SUPPRESS)

    check = sub.add_parser("check", help="validate the config and summarise what would run")
    with_config(check)

    listen = sub.add_parser(
        "listen",
        help="show what the gateway would decide for each message, live (orders nothing)",
        description="Connect with the config's broker settings and, for each message on the "
        "configured device topics (or the TOPIC filters given, e.g. '#'), show which "
        "device it belongs to and what the gateway would decide. For a topic no device is "
        "configured on, suggest the profile and the YAML lines. Places no order.",
    )
    with_config(listen)
    listen.add_argument("topics", nargs="*", metavar="TOPIC", help="MQTT topic filters")
    listen.add_argument(
        "--count", type=_positive, default=None, metavar="N", help="stop after N messages"
    )

    queue = sub.add_parser("queue", help="list, retry or drop orders in the outbox")
    with_config(queue)
    qsub = queue.add_subparsers(dest="queue_command", metavar="ACTION")
    # --config is accepted after the action too (`queue retry ID --config X`); SUPPRESS
    # keeps an absent one from overwriting the value given before the action.
    config_after = argparse.ArgumentParser(add_help=False)
    config_after.add_argument("--config", "-c", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    qsub.add_parser(
        "list",
        parents=[config_after],
        help="orders with state, age, attempts and last error (default)",
    )
    retry = qsub.add_parser(
        "retry", parents=[config_after], help="re-queue a rejected or blocked order"
    )
    retry.add_argument("key", help="the order key, or a unique prefix of it")
    drop = qsub.add_parser(
        "drop", parents=[config_after], help="remove an order that has not reached the shop"
    )
    drop.add_argument("key", help="the order key, or a unique prefix of it")
    drop.add_argument(
        "--force",
        action="store_true",
        help="drop it even if the shop may have it (a request went unanswered) or it is"
        " history (delivered, cancelled at the shop)",
    )

    status = sub.add_parser(
        "status", help="broker and shop reachability, queue, open orders, last events"
    )
    with_config(status)
    status.add_argument("--json", action="store_true", help="the snapshot as JSON")

    web_password = sub.add_parser(
        "web-password", help="set the password of the household's web page (stored hashed)"
    )
    with_config(web_password)
    web_password.add_argument(
        "--stdin", action="store_true", help="read the password from the first line of stdin"
    )

    install = sub.add_parser(
        "install-service",
        help="install the systemd unit, service user and a config skeleton (idempotent)",
    )
    install.add_argument("--root", default="/", help="install below this directory (default /)")
    install.add_argument(
        "--exec",
        dest="executable",
        default=None,
        help="absolute path of reorder-gateway for ExecStart (default: this one)",
    )
    uninstall = sub.add_parser(
        "uninstall-service", help="stop and remove the unit; config, token and state stay"
    )
    uninstall.add_argument("--root", default="/", help="installed below this directory")
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} messages: give 1 or more")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = _COMMANDS.get(args.command)
    if command is None:
        return 2
    try:
        return command(args)
    except ConfigError as exc:
        for message in exc.messages:
            print(message, file=sys.stderr)
        if args.command == "run":
            print(f"{args.config}: refusing to run with an invalid configuration", file=sys.stderr)
        return 2
    # OSError: the state directory, a port, a file these commands open themselves.
    except (GatewayError, OSError) as exc:
        if args.command == "run":
            log.error("cannot start: %s", exc)  # in the service's log format
        else:
            print(f"reorder-gateway {args.command}: {exc}", file=sys.stderr)
        return 1


def _check(args: argparse.Namespace) -> int:
    return check_command(args.config, sys.stdout, sys.stderr)


def _offline_config(config_path: str) -> Config:
    # Secret files are looked up as for `run` and `check` (config.secrets).
    return load_config(config_path).config


def _run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_format)
    # Imported here so that `check` and `queue` work without GPIO or MQTT libraries
    # touching the hardware.
    from gateway.daemon import run_gateway

    return run_gateway(Path(args.config), make_clock(args.time_scale), demo=args.demo)


def _listen(args: argparse.Namespace) -> int:
    from gateway.ops.listen import listen

    return listen(_offline_config(args.config), args.topics, sys.stdout, count=args.count)


def _queue(args: argparse.Namespace) -> int:
    from gateway.ops.queue import queue_drop, queue_list, queue_retry
    from gateway.ops.status import clock_now

    config = _offline_config(args.config)
    state_dir = Path(config.gateway.state_dir)
    if args.queue_command in (None, "list"):
        return queue_list(state_dir, sys.stdout, clock_now(state_dir, RealClock().now()))
    if args.queue_command == "retry":
        return queue_retry(state_dir, args.key, sys.stdout)
    return queue_drop(
        state_dir,
        args.key,
        sys.stdout,
        force=args.force,
        history_retention=config.limits.history_retention,
    )


def _status(args: argparse.Namespace) -> int:
    from gateway.ops.status import status_command

    config = _offline_config(args.config)
    return status_command(
        config.gateway.id,
        Path(config.gateway.state_dir),
        sys.stdout,
        now=RealClock().now(),
        as_json=args.json,
    )


def _web_password(args: argparse.Namespace) -> int:
    from gateway.web.auth import write_password_file

    config = _offline_config(args.config)
    web = config.web
    if web is None:
        print(
            f"reorder-gateway web-password: {args.config} has no 'web:' section — add one "
            "(docs/configuration.md) to switch the page on",
            file=sys.stderr,
        )
        return 2
    path = Path(web.password_path(config.gateway.state_dir))
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        password = getpass.getpass("new web page password: ")
        if getpass.getpass("again: ") != password:
            print(
                "reorder-gateway web-password: the two entries differ; nothing changed",
                file=sys.stderr,
            )
            return 1
    try:
        write_password_file(path, password)
    except ValueError as exc:
        print(f"reorder-gateway web-password: {exc}; nothing changed", file=sys.stderr)
        return 1
    print(f"stored the password's argon2 hash in {path} (mode 0600)")
    return 0


def _service(args: argparse.Namespace) -> int:
    from gateway.ops.systemd import install_service, uninstall_service

    root = Path(args.root)
    if args.command == "install-service":
        executable = Path(args.executable) if args.executable else None
        report = install_service(root, executable)
    else:
        report = uninstall_service(root)
    for label, paths in (
        ("wrote", report.written),
        ("unchanged", report.unchanged),
        ("kept (yours)", report.kept),
        ("removed", report.removed),
        ("ran", report.commands),
        ("skipped", report.skipped),
    ):
        for path in paths:
            print(f"{label:>13}  {path}")
    if report.problems:
        for problem in report.problems:
            print(f"reorder-gateway {args.command}: {problem}", file=sys.stderr)
        return 1
    if args.command == "install-service":
        print(
            "next: put the shop token in /etc/reorder-gateway/credentials/shop-token, edit "
            "/etc/reorder-gateway/gateway.yaml, then: systemctl enable --now reorder-gateway "
            "(docs/operations.md)"
        )
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "check": _check,
    "listen": _listen,
    "run": _run,
    "queue": _queue,
    "status": _status,
    "web-password": _web_password,
    "install-service": _service,
    "uninstall-service": _service,
}
