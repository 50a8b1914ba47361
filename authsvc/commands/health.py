"""``authsvc health``: ask a running ``serve`` whether it can answer requests."""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from authsvc.commands.common import FORMATTER
from authsvc.errors import ConfigError

EPILOG = """\
examples:
  authsvc health -c /etc/authsvc/authsvc.yaml          # readiness: /healthz
  authsvc health -c /etc/authsvc/authsvc.yaml --live   # liveness: /livez

It asks the `serve` started with the same settings, on its metrics.listen address (a
wildcard host such as 0.0.0.0 is asked on loopback), and prints the answer.
/healthz is ok while the event loop runs and the connection to nats-server is up; /livez
judges the event loop only. For a container HEALTHCHECK, a systemd or cron check.

Exit status: 0 healthy; 1 unhealthy or not answering (the reasons are printed); 2 bad
settings, or metrics.listen is not set (health is served on the metrics listener)."""

_WILDCARDS = {"", "0.0.0.0", "[::]"}  # noqa: S104 (recognised, not bound)


def register(sub: Any) -> None:
    parser = sub.add_parser("health", help="check a running serve (/healthz, /livez)",
                            epilog=EPILOG, formatter_class=FORMATTER)
    parser.add_argument("-c", "--config", type=Path, required=True,
                        help="the settings YAML file serve runs with")
    parser.add_argument("--live", action="store_true",
                        help="liveness (/livez): the event loop only, not nats-server")
    parser.add_argument("--timeout", type=float, default=3.0,
                        help="seconds to wait for the answer (default: 3)")
    parser.set_defaults(handler=run)


def health_url(listen: str, live: bool) -> str:
    """Where ``serve`` answers health for ``metrics.listen``."""
    if not listen:
        raise ConfigError("metrics.listen is not set: serve has no health endpoint "
                          "(set it, e.g. 127.0.0.1:9464)")
    host, _, port = listen.rpartition(":")
    if host in _WILDCARDS:
        host = "[::1]" if host == "[::]" else "127.0.0.1"
    return f"http://{host}:{port}{'/livez' if live else '/healthz'}"


def run(args: argparse.Namespace) -> int:
    from authsvc.settings import load_settings

    url = health_url(load_settings(args.config).metrics.listen, args.live)
    # Straight to the listener: an http_proxy in the environment (a container's) must not
    # turn a healthy service into a failed check.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=args.timeout) as reply:
            body = reply.read(4096).decode(errors="replace")
            status = reply.status
    except urllib.error.HTTPError as error:
        body, status = error.read(4096).decode(errors="replace"), error.code
    except (OSError, ValueError) as exc:  # refused, timed out, unreachable
        reason = getattr(exc, "reason", exc)
        print(f"unhealthy: no answer from {url}: {reason}", file=sys.stderr)
        return 1
    text = body.strip() or f"HTTP {status}"
    if status == 200:
        print(text)
        return 0
    print(f"unhealthy ({url}, HTTP {status}):\n{text}", file=sys.stderr)
    return 1
