"""The plant's calendar, in plant time: shifts with their breaks, planned stops, holidays.

Time the plant has not planned to produce is no loss: outside every shift, in a break, in
a planned stop or on a holiday, ISO 22400 leaves it out of planned busy time. A holiday
cancels the shifts that begin on that date (plant time); a night shift that began the
evening before still runs to its end. "Today" begins at the plant's midnight.

The record keeps UTC; every method takes and gives aware times and computes in the
plant's zone. A shift lasts its hours of elapsed time, also across a change of clocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Span = tuple[datetime, datetime]  # [start, end), aware UTC


@dataclass(frozen=True, slots=True)
class Break:
    """A break within a shift: it begins at `start` (plant clock) and lasts `minutes`."""

    start: time
    minutes: float


@dataclass(frozen=True, slots=True)
class ShiftPlan:
    """One shift of every working day: name, start (plant clock), length, breaks."""

    name: str
    start: time
    hours: float
    breaks: tuple[Break, ...] = ()

    def minutes_in(self, clock: time) -> float:
        """Minutes from the shift's start to the next time the plant clock shows `clock`."""
        begin = self.start.hour * 60 + self.start.minute + self.start.second / 60
        at = clock.hour * 60 + clock.minute + clock.second / 60
        return (at - begin) % 1440


@dataclass(frozen=True, slots=True)
class PlannedStop:
    """A planned stop of the whole plant (maintenance, a die trial, a power cut)."""

    start: datetime  # aware
    end: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ShiftSpan:
    """One shift on one day: `day` is the plant date it began on; times in UTC."""

    name: str
    day: date
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class PlantCalendar:
    zone: ZoneInfo
    shifts: tuple[ShiftPlan, ...]
    stops: tuple[PlannedStop, ...] = ()
    holidays: frozenset[date] = frozenset()

    def local(self, at: datetime) -> datetime:
        if at.tzinfo is None:  # the store hands back UTC; SQLite drops the zone
            at = at.replace(tzinfo=UTC)
        return at.astimezone(self.zone)

    def midnight(self, day: date) -> datetime:
        """The start of a plant date, in UTC."""
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)

    def start_of_day(self, now: datetime | None = None) -> datetime:
        """Midnight of the plant's today, in UTC."""
        return self.midnight(self.local(now or datetime.now(UTC)).date())

    def day_starts(self, since: datetime, until: datetime, step_days: int = 1) -> list[datetime]:
        """Plant midnights in (since, until); weekly (`step_days` 7) on Mondays."""
        day = self.local(since).date()
        if step_days == 7:
            day -= timedelta(days=day.weekday())  # ISO weeks start on Monday
        out = []
        while (edge := self.midnight(day)) < until:
            if edge > since:
                out.append(edge)
            day += timedelta(days=step_days)
        return out

    def spans(self, since: datetime, until: datetime) -> list[ShiftSpan]:
        """Every shift that overlaps [since, until), holidays left out, by start."""
        first = self.local(since).date() - timedelta(days=2)  # a long shift of the day before
        out = []
        for n in range((self.local(until).date() - first).days + 1):
            day = first + timedelta(days=n)
            if day in self.holidays:
                continue
            for shift in self.shifts:
                start = datetime.combine(day, shift.start, tzinfo=self.zone).astimezone(UTC)
                end = start + timedelta(hours=shift.hours)
                if start < until and end > since:
                    out.append(ShiftSpan(shift.name, day, start, end))
        return sorted(out, key=lambda s: s.start)

    def shift_at(self, at: datetime | None = None) -> ShiftSpan | None:
        """The shift running at `at` (now), or None: between shifts or on a holiday."""
        at = self.local(at or datetime.now(UTC)).astimezone(UTC)
        moment = at + timedelta(microseconds=1)
        return next((s for s in self.spans(at, moment) if s.start <= at < s.end), None)

    def planned(self, since: datetime, until: datetime) -> list[Span]:
        """The time in [since, until) the plant plans to produce: shifts less their breaks
        and less planned stops, merged, in order."""
        by_name = {s.name: s for s in self.shifts}
        worked, pauses = [], []
        for span in self.spans(since, until):
            worked.append((span.start, span.end))
            for pause in by_name[span.name].breaks:
                begin = span.start + timedelta(minutes=by_name[span.name].minutes_in(pause.start))
                pauses.append((begin, begin + timedelta(minutes=pause.minutes)))
        pauses += [(s.start.astimezone(UTC), s.end.astimezone(UTC)) for s in self.stops]
        clipped = [(max(a, since), min(b, until)) for a, b in _merge(worked)]
        return _subtract([(a, b) for a, b in clipped if a < b], _merge(pauses))

    def unplanned(self, since: datetime, until: datetime) -> list[Span]:
        """The rest of [since, until): no production planned, so no loss."""
        out, at = [], since
        for start, end in self.planned(since, until):
            if start > at:
                out.append((at, start))
            at = end
        if at < until:
            out.append((at, until))
        return out


def _merge(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _subtract(spans: list[Span], cuts: list[Span]) -> list[Span]:
    """`spans` less `cuts`; both sorted and merged."""
    out = []
    for start, end in spans:
        for cut_start, cut_end in cuts:
            if cut_end <= start or cut_start >= end:
                continue
            if cut_start > start:
                out.append((start, cut_start))
            start = max(start, cut_end)
            if start >= end:
                break
        if start < end:
            out.append((start, end))
    return out
