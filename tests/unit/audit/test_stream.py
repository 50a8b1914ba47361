"""The audit stream's settings and subject naming."""

from __future__ import annotations

from datetime import timedelta

import pytest

from authsvc.audit.stream import SUBJECTS, StreamSpec, subject_for, weaknesses
from authsvc.errors import AuditError


@pytest.mark.parametrize(("instance", "subject"), [
    ("vm", "authsvc.audit.vm"), ("host.example.com", "authsvc.audit.host.example.com"),
    ("svc-1_a", "authsvc.audit.svc-1_a")])
def test_subject_per_instance(instance: str, subject: str) -> None:
    assert subject_for(instance) == subject


@pytest.mark.parametrize("instance", ["", "a b", "a.*", "a.>", "a..b", ".a", "a/b"])
def test_instances_that_cannot_be_subjects_are_refused(instance: str) -> None:
    with pytest.raises(AuditError):
        subject_for(instance)


def test_the_created_stream_has_every_protection() -> None:
    config = StreamSpec(replicas=3).config()
    assert weaknesses(config) == []
    assert config["num_replicas"] == 3 and config["subjects"] == [SUBJECTS]
    assert config["duplicate_window"] == 600 * 10**9


@pytest.mark.parametrize(("change", "code"), [
    ({"deny_delete": False}, "deny_delete_off"), ({"deny_purge": False}, "deny_purge_off"),
    ({"discard": "old"}, "discard_old"), ({"allow_rollup_hdrs": True}, "rollup_allowed"),
    ({"allow_msg_ttl": True}, "msg_ttl_allowed"), ({"persist_mode": "async"}, "persist_async"),
    ({"allow_direct": False}, "direct_get_off"), ({"subjects": ["other.>"]}, "subjects_missing"),
    ({"duplicate_window": 10**9}, "duplicate_window_short")])
def test_each_weaker_setting_has_its_code(change: dict[str, object], code: str) -> None:
    assert weaknesses({**StreamSpec().config(), **change}) == [code]


def test_a_longer_required_window_is_checked_against_the_spec() -> None:
    spec = StreamSpec(duplicate_window=timedelta(hours=1))
    assert weaknesses(StreamSpec().config(), spec) == ["duplicate_window_short"]
