"""``authsvc audit stream-init`` and ``authsvc audit fetch``: the JetStream side of the log."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from authsvc.commands.common import FORMATTER

INIT_EPILOG = """\
example:
  authsvc audit stream-init -c /etc/authsvc/authsvc.yaml

Creates the stream AUTHSVC_AUDIT (subjects authsvc.audit.>) with the settings that protect
the records: deny_delete, deny_purge, discard new, no rollups, no message TTLs, a
duplicate window for replays (docs/audit.md). Connects as the service identity, which may
create and inspect the stream but never update, purge or delete it. An existing stream is
checked instead: exit 0 when its settings are at least as strict, 1 (listing the weaker
settings as codes) otherwise. Either way the stream's settings are printed, one per line
(--json: as JSON)."""

FETCH_EPILOG = """\
example:
  authsvc audit fetch -c /etc/authsvc/authsvc.yaml --out evidence/stream/
  authsvc audit verify evidence/stream/<instance>/ --key UB3...

Reads every record from the stream and writes OUT/<instance>/audit.jsonl per instance in
seq order, dropping exact duplicates (identical bytes: a replay past the duplicate window)
and counting them. Records that differ under one seq are kept, even when one claims the
other's record_hash, for verify to report."""


def register(actions: Any) -> None:
    init = actions.add_parser("stream-init", help="create or check the JetStream audit stream",
                              epilog=INIT_EPILOG, formatter_class=FORMATTER)
    init.add_argument("-c", "--config", type=Path, required=True, help="settings YAML file")
    init.add_argument("--replicas", type=int, help="default: audit.jetstream.replicas")
    init.add_argument("--json", action="store_true", help="print the result as JSON")
    init.set_defaults(handler=run_init)
    fetch = actions.add_parser("fetch", help="copy the audit stream into per-instance files",
                               epilog=FETCH_EPILOG, formatter_class=FORMATTER)
    fetch.add_argument("-c", "--config", type=Path, required=True, help="settings YAML file")
    fetch.add_argument("--out", type=Path, required=True, metavar="DIR",
                       help="new or empty directory to write <instance>/audit.jsonl into, "
                            "one folder per instance")
    fetch.add_argument("--force", action="store_true",
                       help="write into a non-empty --out, replacing the <instance>/audit.jsonl "
                            "files of an earlier fetch; without it a non-empty --out is refused")
    fetch.set_defaults(handler=run_fetch)


async def _with_connection(config: Path, action: Any) -> Any:
    from authsvc.natsconf.keystore import KeyStore
    from authsvc.server import connect
    from authsvc.settings import load_settings

    settings = load_settings(config)
    url = settings.audit.jetstream.url or settings.nats.url
    conn = await connect(settings, KeyStore(settings.keys.dir), name="authsvc-audit-cli",
                         servers=[url], max_reconnect_attempts=0)
    try:
        return await action(conn, settings)
    finally:
        await conn.close()


# The stream settings stream-init prints: those docs/audit.md gives a required value for.
SHOWN = ("name", "subjects", "storage", "retention", "num_replicas", "max_age", "max_bytes",
         "duplicate_window", "discard", "deny_delete", "deny_purge", "allow_rollup_hdrs",
         "allow_msg_ttl", "persist_mode", "allow_direct")
DURATIONS = ("max_age", "duplicate_window")  # nanoseconds in the JetStream API


def run_init(args: argparse.Namespace) -> int:
    from authsvc.audit.stream import StreamSpec, ensure_stream

    async def action(conn: Any, settings: Any) -> Any:
        js = settings.audit.jetstream
        spec = StreamSpec(replicas=args.replicas or js.replicas, max_age=js.max_age,
                          duplicate_window=js.duplicate_window)
        return await ensure_stream(conn, spec, create=True)

    check = asyncio.run(_with_connection(args.config, action))
    result = {"created": check.created, "weaknesses": check.weaknesses,
              "config": {k: check.config.get(k) for k in SHOWN},
              "messages": check.state.get("messages")}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(("created" if check.created else "exists") + f": stream {result['config']['name']}"
              f" ({result['config']['num_replicas']} replica(s), {result['messages']} messages)")
        for key, value in result["config"].items():
            print(f"  {key}: {setting_text(key, value)}")
        for code in check.weaknesses:
            print(f"WEAKER THAN REQUIRED: {code}")
    return 1 if check.weaknesses else 0


def setting_text(key: str, value: Any) -> str:
    """One stream setting as stream-init prints it: JSON, durations also in days/h/m/s."""
    if key in DURATIONS and isinstance(value, int) and not isinstance(value, bool):
        unlimited = key == "max_age" and value <= 0  # JetStream: 0 is no age limit
        return f"{value} ({'unlimited' if unlimited else _duration(value)})"
    return "(server default)" if value is None else json.dumps(value)


def _duration(nanos: int) -> str:
    seconds = nanos // 1_000_000_000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def run_fetch(args: argparse.Namespace) -> int:
    from authsvc.audit.fetch import claim_out, collect, write
    from authsvc.audit.stream import read_stream

    claim_out(args.out, replace=args.force)  # before connecting: fail fast, fetch nothing

    async def action(conn: Any, settings: Any) -> Any:
        return await collect(read_stream(conn))

    found = asyncio.run(_with_connection(args.config, action))
    written = write(found, args.out)
    summary = found.summary()
    for name, counts in summary["instances"].items():
        print(f"{name}: {counts['records']} records, {counts['duplicates_dropped']} exact "
              "duplicate(s) dropped")
    if found.unreadable:
        print(f"{len(found.unreadable)} message(s) were not chained audit records "
              f"(stream seq {found.unreadable[:5]}...)")
    print(f"wrote {len(written)} file(s) under {args.out}")
    return 1 if found.unreadable else 0
