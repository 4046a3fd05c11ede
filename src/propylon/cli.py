"""``propylon``: argument parsing and start-up only.

Exit codes: 0 success; 1 ``check`` found problems (or ``explain`` found no route); 2 bad usage
or, for ``run``/``routes``/``explain``, a config that cannot be used. The config readers and
the engine are imported only by the subcommands that need them, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from propylon import __version__
from propylon.config.model import ConfigError, ConfigFormat, GatewayConfig, Problem

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_UNUSABLE = 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_UNUSABLE
    code: int = args.handler(args)
    return code


class _Version(argparse.Action):
    """``--version``: the version and whether the request path is compiled (imported only
    when asked: finding out loads the whole request path)."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kw: object) -> None:
        from propylon.compilation import describe

        print(f"propylon {__version__}\n{describe()}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="propylon", description="A JSON API gateway (native, Ocelot and seed configs)."
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="start the gateway")
    run.add_argument("--config", required=True, metavar="PATH", help="config file")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on")
    run.add_argument("--port", type=_port, default=8000, help="port to listen on (0: any)")
    run.add_argument("--workers", type=_positive, default=1, help="worker processes")
    run.add_argument(
        "--admin",
        metavar="HOST:PORT",
        default=None,
        help="operations listener (metrics, health, stats, config); off unless given "
        "(conventionally 127.0.0.1:9901; beyond loopback it needs PROPYLON_ADMIN_TOKEN)",
    )
    _tls_flags(run)
    _tracing_flags(run)
    run.add_argument(
        "--watch-config",
        action="store_true",
        help="reload whenever the config file changes, as SIGHUP does (needs propylon[watch])",
    )
    run.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity",
    )
    run.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="the gateway's own log records on stderr: text, or one JSON object per line",
    )
    run.add_argument(
        "--access-log",
        metavar="PATH|-",
        default=None,
        help="one line per request to this file (- for standard output); off unless given "
        "or set in the config; SIGUSR1 reopens it",
    )
    run.add_argument(
        "--access-log-format",
        default=None,
        choices=["json", "combined"],
        help="the access log's lines: json (default) or Apache's combined format",
    )
    run.set_defaults(handler=_run)

    check = commands.add_parser("check", help="validate a config without starting anything")
    check.add_argument("path", metavar="PATH")
    check.add_argument("--strict", action="store_true", help="warnings fail the check too")
    _tls_flags(check)
    _tracing_flags(check)
    check.set_defaults(handler=_check)

    routes = commands.add_parser("routes", help="print the effective route table")
    routes.add_argument("path", metavar="PATH")
    routes.set_defaults(handler=_routes)

    explain = commands.add_parser("explain", help="show which route a request would take")
    explain.add_argument("path", metavar="PATH")
    explain.add_argument("method", metavar="METHOD")
    explain.add_argument("url", metavar="URL", help="/path?query or http://host:port/path")
    explain.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        dest="headers",
        metavar="'Name: value'",
        help="a request header (repeatable)",
    )
    explain.set_defaults(handler=_explain)

    key = commands.add_parser(
        "assertion-key",
        help="create the signed hop's Ed25519 key (kept if it exists) and its public keys",
    )
    key.add_argument("key", metavar="KEY", help="private key file (PEM, created mode 0600)")
    key.add_argument(
        "--public-keys",
        metavar="PATH",
        help="also write the public JWK set here (SERVICEKIT_GATEWAY_PUBLIC_KEYS_FILE)",
    )
    key.set_defaults(handler=_assertion_key)

    for sub in (run, check, routes, explain):
        sub.add_argument(
            "--format",
            choices=[f.value for f in ConfigFormat],
            default=None,
            help="skip format detection",
        )
    return parser


def _tls_flags(parser: argparse.ArgumentParser) -> None:
    """The TLS listener's flags: the same four settings as a native file's ``tls`` block."""
    group = parser.add_argument_group("TLS listener (overrides the file's tls block)")
    group.add_argument("--tls-cert", metavar="PEM", help="certificate chain, server's first")
    group.add_argument("--tls-key", metavar="PEM", help="its private key (unencrypted)")
    group.add_argument(
        "--tls-port", type=_port, default=None, help="TLS port (default 8443; 0: any)"
    )
    group.add_argument(
        "--tls-only", action="store_true", help="no plain HTTP listener, only the TLS one"
    )


def _tracing_flags(parser: argparse.ArgumentParser) -> None:
    """Span export: the settings of a native file's ``tracing`` block, one flag each."""
    group = parser.add_argument_group("tracing (overrides the file's tracing block)")
    group.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="export spans over OTLP/HTTP to this collector (http://HOST:4318 posts to "
        "/v1/traces); needs the [otlp] extra. W3C traceparent is propagated without it too",
    )
    group.add_argument(
        "--otlp-sample-ratio",
        metavar="RATIO",
        help="share of new traces sampled, 0-1 (default 1); a client's sampled flag is kept",
    )


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0-65535")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _format(args: argparse.Namespace) -> ConfigFormat | None:
    return ConfigFormat(args.format) if args.format else None


def _print(problems: Sequence[Problem], stream: TextIO) -> None:
    for problem in problems:
        print(problem, file=stream)


def _load(path: str, args: argparse.Namespace) -> GatewayConfig:
    """The config file with the command's ``--tls-*`` flags applied (ConfigError)."""
    from propylon.config.loader import load_config

    config = load_config(path, fmt=_format(args))
    if hasattr(args, "tls_cert"):
        from propylon.config.tls import with_tls_flags

        config = with_tls_flags(
            config,
            cert=args.tls_cert,
            key=args.tls_key,
            port=args.tls_port,
            only=args.tls_only,
        )
    if hasattr(args, "otlp_endpoint"):
        from propylon.config.tracing import with_tracing_flags

        config = with_tracing_flags(
            config, endpoint=args.otlp_endpoint, sample_ratio=args.otlp_sample_ratio
        )
    return config


def _load_or_report(path: str, args: argparse.Namespace) -> GatewayConfig | None:
    """The config, its warnings on stderr; or None after printing why it is unusable."""
    try:
        config = _load(path, args)
    except ConfigError as exc:
        _print(exc.problems, sys.stderr)
        errors = sum(p.severity == "error" for p in exc.problems)
        print(f"{path}: not usable ({errors} error{'' if errors == 1 else 's'})", file=sys.stderr)
        return None
    _print(config.warnings, sys.stderr)
    return config


def _run(args: argparse.Namespace) -> int:
    # Before anything forks: the supervisor, workers and admin process all log this way.
    from propylon.logs.structured import configure, log_problems

    configure(args.log_format, args.log_level)
    import os

    from propylon.config.access_log import open_problem, with_access_log_flags
    from propylon.config.source import ConfigSource

    # How the file is read now and on every reload (SIGHUP, POST /reload): the same flags.
    source = ConfigSource(
        args.config,
        _format(args),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_port=args.tls_port,
        tls_only=args.tls_only,
        admin=args.admin,
        otlp_endpoint=args.otlp_endpoint,
        otlp_sample_ratio=args.otlp_sample_ratio,
    )
    try:
        loaded = source.load(os.environ)
    except ConfigError as exc:
        log_problems(exc.problems)
        errors = sum(p.severity == "error" for p in exc.problems)
        logging.getLogger("propylon.config").error(
            "%s: not usable (%d error%s)", args.config, errors, "" if errors == 1 else "s"
        )
        return EXIT_UNUSABLE
    config = loaded.config
    log_problems(config.warnings)
    from propylon.config.tracing import sdk_problem

    missing = sdk_problem(config)
    if missing is not None:
        log_problems([missing])
        return EXIT_UNUSABLE
    try:
        # The access log is opened once, at start-up (a reload does not reopen it).
        config = with_access_log_flags(config, args.access_log, args.access_log_format)
        if config.access_log is not None:
            flag = args.access_log is not None
            where = ("--access-log", "") if flag else (config.source, "access_log.path")
            problem = open_problem(config.access_log, *where)
            if problem is not None:
                raise ConfigError([problem])
    except ConfigError as exc:
        log_problems(exc.problems)
        return EXIT_UNUSABLE
    if config.assertion is not None and not _publish_assertion_keys(config):
        return EXIT_UNUSABLE
    # Imported here: the engine pulls in uvloop and the data plane, which check/routes/explain
    # never need.
    from propylon.engine.runner import serve

    return serve(
        config,
        host=args.host,
        port=args.port,
        workers=args.workers,
        source=source,
        loaded=loaded,
        watch_config=args.watch_config,
    )


def _publish_assertion_keys(config: GatewayConfig) -> bool:
    """Write the signed hop's public keys where the config says, once, before any worker
    starts (workers writing one file at once would race); False after saying why not."""
    from pathlib import Path

    from propylon.auth.assertion import signer_for

    settings = config.assertion
    assert settings is not None
    log = logging.getLogger("propylon.assertion")
    signer = signer_for(settings)
    signed = sum(spec.assertion_audience is not None for spec in config.routes)
    log.info(
        "signing gateway assertions on %d route%s with key %s (kid %s)",
        signed,
        "" if signed == 1 else "s",
        settings.key_file,
        signer.kid,
    )
    if settings.public_keys_file is None:
        log.warning(
            "the assertion's public keys are written nowhere: services cannot verify them "
            "unless given the key another way (set the public keys file in the config)"
        )
        return True
    try:
        signer.write_public_keys(Path(settings.public_keys_file))
    except OSError as exc:
        log.error(
            "%s: cannot write the assertion's public keys (%s)",
            settings.public_keys_file,
            exc.strerror or exc,
        )
        return False
    log.info("assertion public keys written to %s", settings.public_keys_file)
    return True


def _assertion_key(args: argparse.Namespace) -> int:
    from pathlib import Path

    from propylon.auth.assertion import AssertionSigner, load_or_create_key

    path = Path(args.key)
    existed = path.exists()
    try:
        signer = AssertionSigner(load_or_create_key(path))
        if args.public_keys is not None:
            signer.write_public_keys(Path(args.public_keys))
    except (ValueError, OSError) as exc:
        print(f"propylon assertion-key: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    state = "kept" if existed else "created"
    print(f"{path}: {state} (Ed25519, kid {signer.kid})")
    if args.public_keys is not None:
        print(f"{args.public_keys}: public keys written")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from propylon.config.summary import summary_lines

    try:
        config = _load(args.path, args)
    except ConfigError as exc:
        _print(exc.problems, sys.stdout)
        return EXIT_PROBLEMS
    _print(config.warnings, sys.stdout)
    for line in summary_lines(config):
        print(line)
    count = len(config.routes)
    warned = len(config.warnings)
    extra = f", {warned} warning{'' if warned == 1 else 's'}" if warned else ""
    print(
        f"{args.path}: OK ({count} route{'' if count == 1 else 's'}, "
        f"format {config.format.value}{extra})"
    )
    return EXIT_PROBLEMS if warned and args.strict else EXIT_OK


def _routes(args: argparse.Namespace) -> int:
    from propylon.config.route_table import render_table

    config = _load_or_report(args.path, args)
    if config is None:
        return EXIT_UNUSABLE
    print(render_table(config))
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    from propylon.explain import explain, parse_header

    try:
        headers = [parse_header(text) for text in args.headers]
    except ValueError as exc:
        print(f"propylon explain: -H: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    config = _load_or_report(args.path, args)
    if config is None:
        return EXIT_UNUSABLE
    result = explain(config, args.method, args.url, headers)
    print(result)
    return EXIT_OK if result.matched else EXIT_PROBLEMS
