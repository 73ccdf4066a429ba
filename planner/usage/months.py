"""Calendar months in UTC, as integer epoch seconds: where a job's seconds fall, month by month.

UTC, not the site's local time: sacct is asked for UTC (slurm_io), and a month then has the same
seconds everywhere. JSC debits its accounts daily in Jülich's time (UTC+1, UTC+2 in summer), so a job
running across midnight at a month's end may land one or two hours in the neighbouring month there.

A job occupies [Start, Start + ElapsedRaw): its own elapsed seconds, so the months' seconds always add
up to what sacct charged, also for a running job (elapsed so far) and for one that was suspended (whose
End - Start is longer than what it is charged).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta

from planner.errors import PlannerError

DAY = 86400
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(text: str, field: str) -> int:
    """00:00 UTC of the day `text` (YYYY-MM-DD), in epoch seconds; a bad date is an error about `field`."""
    try:
        if not ISO_DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise PlannerError(f"{text!r} is not a date YYYY-MM-DD", field) from None
    return calendar.timegm(day.timetuple())


def month_of(t: int) -> tuple[int, int]:
    moment = datetime.fromtimestamp(t, tz=UTC)
    return moment.year, moment.month


def month_label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def month_start(year: int, month: int) -> int:
    return calendar.timegm((year, month, 1, 0, 0, 0))


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def add_months(year: int, month: int, n: int) -> tuple[int, int]:
    k = year * 12 + month - 1 + n
    return k // 12, k % 12 + 1


def months_between(lo: int, hi: int) -> list[tuple[int, int]]:
    """The months that [lo, hi) touches, in order (none when hi <= lo)."""
    if hi <= lo:
        return []
    out, ym = [], month_of(lo)
    while month_start(*ym) < hi:
        out.append(ym)
        ym = next_month(*ym)
    return out


def overlap(start: int, seconds: int, lo: int, hi: int) -> int:
    """Seconds of [start, start + seconds) inside [lo, hi)."""
    return max(0, min(start + seconds, hi) - max(start, lo))


def split_by_month(start: int, seconds: int, lo: int, hi: int) -> dict[tuple[int, int], int]:
    """Seconds of [start, start + seconds) in each month, within [lo, hi); months without any are left out."""
    out = {}
    for ym in months_between(max(start, lo), min(start + seconds, hi)):
        inside = overlap(start, seconds, max(lo, month_start(*ym)), min(hi, month_start(*next_month(*ym))))
        if inside:
            out[ym] = inside
    return out


def day_text(t: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=t)).strftime("%Y-%m-%d")


def time_text(t: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%S")
