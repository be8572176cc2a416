"""Plant time for people: the record keeps UTC, pages show the plant's wall clock with its
zone, and "today" and "this shift" begin when they begin in the plant, not in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from castline.domain.plant_calendar import PlantCalendar, ShiftSpan
from castline.settings import Settings


@dataclass(frozen=True, slots=True)
class PlantClock:
    """The settings' plant calendar, with the words a page needs to show its times."""

    calendar: PlantCalendar

    @classmethod
    def of(cls, settings: Settings) -> PlantClock:
        return cls(settings.calendar)

    @property
    def zone(self) -> ZoneInfo:
        return self.calendar.zone

    def local(self, at: datetime) -> datetime:
        return self.calendar.local(at)

    def label(self, at: datetime) -> str:
        """The zone's abbreviation (CST), or its offset (+08:00) where it has none."""
        local = self.local(at)
        name = local.tzname() or ""
        if not name or name[0] in "+-":
            offset = local.strftime("%z")
            name = f"{offset[:3]}:{offset[3:]}"
        return name

    def show(self, at: datetime | None, seconds: bool = False) -> str:
        """`2026-12-01 00:05 CST`: plant wall clock and zone."""
        if at is None:
            return "—"
        local = self.local(at)
        clock = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
        return f"{clock} {self.label(at)}"

    def start_of_day(self, now: datetime | None = None) -> datetime:
        """Midnight of the plant's today, in UTC."""
        return self.calendar.start_of_day(now)

    def shift_at(self, now: datetime | None = None) -> ShiftSpan | None:
        """The shift running at `now` (one that began yesterday evening included); None
        between shifts and on a holiday."""
        return self.calendar.shift_at(now or datetime.now(UTC))
