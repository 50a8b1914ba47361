"""Connect-time windows: when a grant may be used, in an explicit IANA time zone.

A window is ``{days: [mon, ...], start: "08:00", end: "18:00"}``; ``start > end`` crosses
midnight and ``days`` names the day the window *starts*. The zone is mandatory: nats-server
falls back to its own local zone when ``times_location`` is absent (nats-io/jwt v2
``TimeRange``), and a policy must not depend on where it runs.

A connect inside a window is granted at most until the window ends, so the minted JWT expires
(and nats-server disconnects the client) when the window closes.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
# Names the zone database loads that are not one fixed IANA zone: ``localtime`` is a link to
# the host's /etc/localtime, ``posixrules`` the host's default rules for POSIX TZ strings,
# ``Factory`` a placeholder ("-00"), and ``posix/`` and ``right/`` are whole copies of the
# database that some hosts install and others do not (``right/`` zones count leap seconds,
# which zoneinfo does not, so their DST changes come about 27 s late). Compared case-folded:
# a case-insensitive file system loads ``LocalTime`` as well.
_HOST_ZONES = frozenset({"localtime", "posixrules", "factory"})
_HOST_ZONE_TREES = frozenset({"posix", "right"})


class Day(StrEnum):
    """Days of the week, in ``date.weekday()`` order."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


_WEEK = tuple(Day)


def _clock(value: object) -> object:
    if not isinstance(value, str):
        return value
    found = _CLOCK.match(value)
    if found is None:
        raise PydanticCustomError("clock_invalid", "time of day {value} is not HH:MM (24h)",
                                  {"value": repr(value)})
    return time(int(found.group(1)), int(found.group(2)))


def zone(value: object) -> object:
    """Validate an IANA zone name (pydantic ``BeforeValidator``); returns it unchanged.

    Names whose meaning depends on the host (``_HOST_ZONES``, ``_HOST_ZONE_TREES``) are
    refused, so that one policy grants the same hours wherever it runs.
    """
    if not isinstance(value, str):
        return value
    folded = value.casefold()
    if folded in _HOST_ZONES or folded.partition("/")[0] in _HOST_ZONE_TREES:
        raise PydanticCustomError("zone_host_dependent",
                                  "time zone {value} depends on the host it runs on",
                                  {"value": repr(value)})
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PydanticCustomError("zone_invalid", "unknown time zone {value}",
                                  {"value": repr(value)}) from exc
    return value


Clock = Annotated[time, BeforeValidator(_clock)]
ZoneName = Annotated[str, BeforeValidator(zone)]


class Window(BaseModel):
    """One weekly connect window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: Annotated[tuple[Day, ...], Field(min_length=1)] = _WEEK
    start: Clock
    end: Clock

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise PydanticCustomError("window_empty", "a window's start and end must differ")
        return self

    def remaining(self, now: datetime, tz: ZoneInfo) -> timedelta | None:
        """Time left in this window at ``now``, or ``None`` when ``now`` is outside it."""
        local = now.astimezone(tz)
        for start_day in (local.date(), local.date() - timedelta(days=1)):
            if _WEEK[start_day.weekday()] not in self.days:
                continue
            opens, closes = self._bounds(start_day, tz)
            if opens <= now < closes:
                return closes - now
        return None

    def _bounds(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The window starting on ``day`` as UTC instants, never longer than on the wall.

        A wall time in a DST gap (spring forward) or fold (fall back) stands for two
        instants, ``fold=0`` and ``fold=1`` (PEP 495); a window opens at the later one and
        closes at the earlier one, so a transition can shorten it but never lengthen it. An
        end of 02:59 in a gap at 02:00 closes at 01:59 (the earlier reading), not at 03:59;
        an end in the repeated hour closes at its first occurrence, a start in it opens at
        its second.
        """
        end_day = day + timedelta(days=1) if self.end < self.start else day
        # Aware datetimes in one zone subtract as wall clock; compare in UTC across DST.
        opens = max(_instants(datetime.combine(day, self.start, tzinfo=tz)))
        closes = min(_instants(datetime.combine(end_day, self.end, tzinfo=tz)))
        return opens, closes


def _instants(wall: datetime) -> tuple[datetime, datetime]:
    """``wall`` read with ``fold=0`` and ``fold=1``, in UTC: equal unless it is in a DST gap
    or fold."""
    return wall.astimezone(UTC), wall.replace(fold=1).astimezone(UTC)


def time_left(windows: tuple[Window, ...], zone_name: str, now: datetime) -> timedelta | None:
    """The longest time left in any window at ``now``; ``None`` when outside all of them."""
    tz = ZoneInfo(zone_name)
    left = [span for window in windows if (span := window.remaining(now, tz)) is not None]
    return max(left) if left else None
