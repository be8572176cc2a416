"""Plant time for people: the record keeps UTC, pages show the plant's wall clock with its
zone, and "today" and "this shift" begin when they begin in the plant, not in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from castline.settings import Settings, Shift


@dataclass(frozen=True, slots=True)
class ShiftNow:
    """The shift a moment falls in, with its start and end in UTC."""

    name: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class PlantClock:
    zone: ZoneInfo
    shifts: tuple[Shift, ...]

    @classmethod
    def of(cls, settings: Settings) -> PlantClock:
        return cls(ZoneInfo(settings.plant_timezone), settings.shifts)

    def local(self, at: datetime) -> datetime:
        if at.tzinfo is None:  # the store hands back UTC; SQLite drops the zone
            at = at.replace(tzinfo=UTC)
        return at.astimezone(self.zone)

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
        """Midnight of the plant's today, in UTC (08:00 UTC is midnight... in UTC-8)."""
        local = self.local(now or datetime.now(UTC))
        midnight = datetime(local.year, local.month, local.day, tzinfo=self.zone)
        return midnight.astimezone(UTC)

    def shift_at(self, now: datetime | None = None) -> ShiftNow | None:
        """The shift running at `now` (one that began yesterday evening included)."""
        local = self.local(now or datetime.now(UTC))
        for days_back in (0, 1):
            day = local.date() - timedelta(days=days_back)
            for shift in self.shifts:
                start = datetime.combine(day, shift.start, tzinfo=self.zone)
                end = start + timedelta(hours=shift.hours)
                if start <= local < end:
                    return ShiftNow(shift.name, start.astimezone(UTC), end.astimezone(UTC))
        return None
