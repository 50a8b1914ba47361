"""``authsvc audit stream-init`` and ``authsvc audit fetch``: the JetStream side of the log."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from authsvc.commands.common import FORMATTER
from authsvc.errors import AuditError

INIT_EPILOG = """\
example:
  authsvc audit stream-init -c /etc/authsvc/authsvc.yaml
  authsvc audit stream-init -c /etc/authsvc/authsvc.yaml --replicas 3 --json

Creates the stream AUTHSVC_AUDIT (subjects authsvc.audit.>) with the settings that protect
the records: deny_delete, deny_purge, discard new, no rollups, no message TTLs, a
duplicate window for replays (docs/audit.md). Connects as the service identity, which may
create and inspect the stream but never update, purge or delete it. An existing stream is
checked instead, and never changed: --replicas (like audit.jetstream.replicas and max_age)
applies only when this creates the stream, so fewer replicas on an existing one are not a
weaker setting; a duplicate window shorter than audit.jetstream.duplicate_window is
(duplicate_window_short). Either way the stream's settings are printed, one per line
(--json: as JSON).

The stream lives on audit.jetstream.url (empty: nats.url), in the callout account, which
must have JetStream: for a server whose config comes from nats-config, generate it with
--jetstream-dir DIR.

Exit status: 0 created, or exists with settings at least as strict; 1 exists with weaker
settings (listed as codes, e.g. deny_delete_off); 2 settings or keys that do not load,
nats-server refused the login, the server runs no JetStream for the callout account, or
JetStream refused the request; 69 nats-server did not answer within nats.startup_timeout."""

FETCH_EPILOG = """\
example:
  authsvc audit fetch -c /etc/authsvc/authsvc.yaml --out evidence/stream/
  authsvc audit verify evidence/stream/ --key UB3...

Reads every record from the stream and writes OUT/<instance>/audit.jsonl per instance in
seq order, dropping exact duplicates (identical bytes: a replay past the duplicate window)
and counting them. Records that differ under one seq are kept, even when one claims the
other's record_hash, for verify to report.

Exit status: 0 every message was a chained audit record, and the files are written; 1 some
messages were not (their stream sequences are printed; the records around them are still
written); 2 --out is not empty (without --force) or not a directory, settings or keys that
do not load, nats-server refused the login, the server runs no JetStream for the callout
account (see stream-init), the stream does not exist yet, or reading it failed; 69
nats-server did not answer within nats.startup_timeout. With 2, nothing is written."""


def register(actions: Any) -> None:
    init = actions.add_parser("stream-init", help="create or check the JetStream audit stream",
                              epilog=INIT_EPILOG, formatter_class=FORMATTER)
    init.add_argument("-c", "--config", type=Path, required=True, help="settings YAML file")
    init.add_argument("--replicas", type=int, help="replicas of a stream this creates; "
                      "an existing stream keeps its own (default: audit.jetstream.replicas)")
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


async def _with_connection(config: Path, action: Any, *, need_stream: bool) -> Any:
    from authsvc.natsconf.keystore import KeyStore
    from authsvc.server import connect, redact_url
    from authsvc.settings import load_settings

    settings = load_settings(config)
    url = settings.audit.jetstream.url or settings.nats.url
    conn = await connect(settings, KeyStore(settings.keys.dir), name="authsvc-audit-cli",
                         servers=[url], max_reconnect_attempts=0)
    try:
        await require_jetstream(conn, where=redact_url(url),
                                account=settings.nats.callout_account, need_stream=need_stream)
        return await action(conn, settings)
    finally:
        await conn.close()


# How nats-server says there is no JetStream for this connection's account: with none on the
# server nobody subscribes to $JS.API.>, and the client is sent a message with a 503 status
# header (no responders: nats-py's request() raises NoRespondersError for it, and
# read_stream's direct get reports "status 503"); with JetStream on but not for the account, the API
# answers JSNotEnabledForAccountErr (nats-server errors.json; both checked against 2.15.1).
NO_RESPONDERS = "503"
JS_NOT_ENABLED_FOR_ACCOUNT = 10039
PROBE_TIMEOUT = 2.0


class NoJetStream(AuditError):
    """The server runs no JetStream for the callout account: the stream cannot live there."""


class StreamMissing(AuditError):
    """The audit stream does not exist (yet): nothing to fetch."""


async def require_jetstream(conn: Any, *, where: str, account: str,
                            need_stream: bool) -> None:
    """Refuse, saying what to do, a server that runs no JetStream for ``account`` and, when
    ``need_stream``, a missing stream. Asks STREAM.INFO (which the service identity may call)
    on its own inbox so that no-responders is a status read here, not a client exception."""
    from authsvc.audit.stream import API, STREAM, STREAM_NOT_FOUND

    answer = await _stream_info(conn, f"{API}.STREAM.INFO.{STREAM}")
    error = answer.get("error") if isinstance(answer, dict) else None
    code = error.get("err_code") if isinstance(error, dict) else None
    if answer is None or code == JS_NOT_ENABLED_FOR_ACCOUNT:
        raise NoJetStream(
            f"nats-server at {where} runs no JetStream for the callout account {account}, "
            "where the audit stream lives: for a server whose config comes from `authsvc "
            "nats-config`, regenerate it with --jetstream-dir DIR and restart nats-server; "
            "or point audit.jetstream.url at a server that has JetStream (docs/audit.md)")
    if need_stream and code == STREAM_NOT_FOUND:
        raise StreamMissing(f"stream {STREAM} does not exist on nats-server at {where}: "
                            "create it with `authsvc audit stream-init` (serve creates it "
                            "too, with audit.sink jetstream or both)")


async def _stream_info(conn: Any, subject: str) -> Any:
    """The decoded answer to ``subject``; None for no responders. Anything else (a timeout,
    no JSON) is left to the calls that follow, which report it as before."""
    inbox = conn.new_inbox()
    answers: asyncio.Queue[Any] = asyncio.Queue()

    async def deliver(msg: Any) -> None:
        answers.put_nowait(msg)

    sub = await conn.subscribe(inbox, cb=deliver)
    try:
        await conn.publish(subject, b"", reply=inbox)
        msg = await asyncio.wait_for(answers.get(), PROBE_TIMEOUT)
    except TimeoutError:
        return {}
    finally:
        await sub.unsubscribe()
    if (msg.headers or {}).get("Status") == NO_RESPONDERS:
        return None
    try:
        return json.loads(msg.data)
    except ValueError:
        return {}


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

    check = asyncio.run(_with_connection(args.config, action, need_stream=False))
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

    found = asyncio.run(_with_connection(args.config, action, need_stream=True))
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
