"""The load generator's protocol parsing: a rejected connect must never count as a connect."""

from __future__ import annotations

import json

import pytest

from bench.loadgen import percentile
from bench.wire import (
    MAX_CONTROL_LINE,
    Reply,
    WireError,
    classify,
    connect_line,
    error_text,
    parse_info,
)

INFO_WITH_NONCE = (
    b'INFO {"server_id":"NABC","version":"2.15.1","auth_required":true,'
    b'"max_payload":1048576,"nonce":"kS0xdH1gY4xv3Ng"}\r\n'
)


def test_parse_info_takes_nonce() -> None:
    info = parse_info(INFO_WITH_NONCE)
    assert info.nonce == "kS0xdH1gY4xv3Ng"
    assert info.server_id == "NABC"
    assert info.auth_required is True
    assert info.max_payload == 1048576


def test_parse_info_without_nonce() -> None:
    assert parse_info(b'INFO {"server_id":"N1"}\r\n').nonce is None


@pytest.mark.parametrize(
    "line",
    [b"-ERR 'Authorization Violation'\r\n", b"INFO {not json}\r\n", b"INFO [1]\r\n", b"INFO\r\n"],
)
def test_parse_info_refuses_other_lines(line: bytes) -> None:
    with pytest.raises(WireError):
        parse_info(line)


def test_connect_line_is_connect_then_ping() -> None:
    data = connect_line({"auth_token": "t0k"})
    connect, ping, rest = data.split(b"\r\n")
    assert ping == b"PING" and rest == b""
    verb, _, body = connect.partition(b" ")
    fields = json.loads(body)
    assert verb == b"CONNECT"
    assert fields["verbose"] is False and fields["pedantic"] is False
    assert fields["protocol"] == 1 and fields["lang"] == "bench"
    assert fields["auth_token"] == "t0k"


def test_connect_line_refuses_oversized_credentials() -> None:
    with pytest.raises(WireError):
        connect_line({"auth_token": "x" * MAX_CONTROL_LINE})


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"PONG\r\n", Reply.ACCEPTED),
        (b"-ERR 'Authorization Violation'\r\n", Reply.REJECTED),
        (b"-ERR 'Authentication Timeout'", Reply.REJECTED),
        (b"PING\r\n", Reply.IGNORE),
        (b"+OK\r\n", Reply.IGNORE),
        (b'INFO {"ldm":true}\r\n', Reply.IGNORE),
    ],
)
def test_classify(line: bytes, expected: Reply) -> None:
    assert classify(line) is expected


def test_classify_refuses_unknown_lines() -> None:
    with pytest.raises(WireError):
        classify(b"MSG foo 1 2\r\n")


def test_error_text_strips_quotes() -> None:
    assert error_text(b"-ERR 'Authorization Violation'\r\n") == "Authorization Violation"


@pytest.mark.parametrize(
    ("fraction", "expected"), [(0.5, 5), (0.9, 9), (0.99, 10), (1.0, 10), (0.0, 1)]
)
def test_percentile_nearest_rank(fraction: float, expected: int) -> None:
    assert percentile(list(range(1, 11)), fraction) == expected


def test_percentile_empty() -> None:
    assert percentile([], 0.5) == 0
