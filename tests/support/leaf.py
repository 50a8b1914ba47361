"""A second nats-server on loopback, a leaf node of a test deployment's hub.

``listen_for_leafs(leaf_port, monitor_port)`` is a ``Deployment.config_edit``: it adds the
hub's leaf node listener and its monitoring port (``/leafz`` shows where the hub placed a
leaf and which of its subscriptions it accepted). ``leaf_node(root, remote_url)`` runs the
leaf server, without any auth of its own, with one remote: ``remote_url`` carries the
credentials the hub's callout sees (``nats-leaf://TOKEN@host:port`` or
``nats-leaf://USER:PASS@host:port``; nats-server 2.10.26+/2.11 forwards them, PR #6492).
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from authsvc.natsconf.process import NatsServer, free_port


def listen_for_leafs(leaf_port: int, monitor_port: int) -> Callable[[dict[str, Any]], None]:
    def edit(body: dict[str, Any]) -> None:
        body["leafnodes"] = {"listen": f"127.0.0.1:{leaf_port}"}
        body["http"] = f"127.0.0.1:{monitor_port}"

    return edit


@contextlib.contextmanager
def leaf_node(root: Path, remote_url: str) -> Iterator[NatsServer]:
    """A running leaf server (its clients connect to ``.url``), stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "leaf.conf"
    config.write_text(json.dumps({
        "server_name": "edge-leaf", "listen": f"127.0.0.1:{port}",
        "leafnodes": {"remotes": [{"url": remote_url}]},
    }, indent=2))
    server = NatsServer(config, port=port).start()
    try:
        yield server
    finally:
        server.stop()


def leafz(monitor_port: int) -> list[dict[str, Any]]:
    """The hub's leaf connections, with their subscriptions (``/leafz?subs=1``)."""
    url = f"http://127.0.0.1:{monitor_port}/leafz?subs=1"
    with urllib.request.urlopen(url, timeout=3) as reply:
        leafs: list[dict[str, Any]] = json.loads(reply.read())["leafs"]
    return leafs
