"""SeqRanges: the seqs a verifier saw, as ranges; checked against a plain set."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from authsvc.audit.seqranges import SeqRanges

SEQS = st.lists(st.integers(min_value=-3, max_value=60), max_size=60)


@given(SEQS, st.integers(min_value=-5, max_value=65), st.integers(min_value=0, max_value=30))
def test_ranges_answer_as_a_set_would(seqs: list[int], first: int, width: int) -> None:
    ranges, seen = SeqRanges(), set()
    for seq in seqs:
        ranges.add(seq)
        seen.add(seq)
    last = first + width
    assert ranges.any_in(first, last) == any(first <= s <= last for s in seen)
    missing = [s for lo, hi in ranges.missing(first, last) for s in range(lo, hi + 1)]
    assert missing == [s for s in range(first, last + 1) if s not in seen]


def test_a_long_run_in_order_has_no_gap_inside() -> None:
    ranges = SeqRanges()
    for seq in range(1, 100_001):
        ranges.add(seq)
    assert ranges.missing(1, 100_000) == [] and ranges.missing(0, 100_001) == [
        (0, 0), (100_001, 100_001)]
