"""The set of sequence numbers a verifier has seen, kept as sorted ranges.

A chain is one run 1..n in the common case, so this stays a single range however long the
log; a reordered or repeated record costs a search, a gap one more range.
"""

from __future__ import annotations

from bisect import bisect_right


class SeqRanges:
    """Disjoint, non-adjacent ``(first, last)`` ranges in ascending order."""

    def __init__(self) -> None:
        self._firsts: list[int] = []
        self._lasts: list[int] = []

    def add(self, seq: int) -> None:
        firsts, lasts = self._firsts, self._lasts
        if lasts and lasts[-1] + 1 == seq:  # the next one: the common case
            lasts[-1] = seq
            return
        at = bisect_right(firsts, seq) - 1  # the range starting at or before seq
        if at >= 0 and seq <= lasts[at]:
            return  # seen before
        joins_left = at >= 0 and lasts[at] + 1 == seq
        joins_right = at + 1 < len(firsts) and firsts[at + 1] - 1 == seq
        if joins_left and joins_right:
            lasts[at] = lasts[at + 1]
            del firsts[at + 1], lasts[at + 1]
        elif joins_left:
            lasts[at] = seq
        elif joins_right:
            firsts[at + 1] = seq
        else:
            firsts.insert(at + 1, seq)
            lasts.insert(at + 1, seq)

    def any_in(self, first: int, last: int) -> bool:
        """Whether any seq in ``first..last`` was seen."""
        at = bisect_right(self._firsts, last) - 1  # the last range starting by ``last``
        return first <= last and at >= 0 and self._lasts[at] >= first

    def missing(self, first: int, last: int) -> list[tuple[int, int]]:
        """The ranges in ``first..last`` never seen."""
        found: list[tuple[int, int]] = []
        expect = first
        for lo, hi in zip(self._firsts, self._lasts, strict=True):
            if hi < expect:
                continue
            if lo > last:
                break
            if lo > expect:
                found.append((expect, lo - 1))
            expect = hi + 1
        if expect <= last:
            found.append((expect, last))
        return found
