"""The alarm engine of a line worker: fed shots and verdicts as they are recorded, it
keeps the control charts of each machine and die (domain/live_spc.py), watches the share
of held parts, takes alarms others raise (an envelope breach), and hands the gate's due
alarms to whoever writes them. Pure: the caller gives the clock and does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from castline.domain.alarms import QUARANTINE_RATE, Alarm, AlarmGate, RateWatch
from castline.domain.live_spc import Baseline, ChartRules, ChartSet, readings
from castline.domain.shot import Shot
from castline.domain.units import NAMES
from castline.domain.verdict import PartVerdict, Verdict

ChartKey = tuple[str, str, str]  # plant, machine, die


class AlarmEngine:
    """Implements `AlarmSink`: `raise_` takes an alarm from anywhere in the worker."""

    def __init__(
        self,
        rules: ChartRules | None = None,
        gate: AlarmGate | None = None,
        rates: RateWatch | None = None,
        names: tuple[str, ...] = NAMES,
    ) -> None:
        self.rules = rules or ChartRules()
        self.gate = gate or AlarmGate()
        self.rates = rates or RateWatch()
        self.names = names
        self.charts: dict[ChartKey, ChartSet] = {}
        self.shots_seen = 0
        self.learnt: list[tuple[ChartKey, int, Baseline]] = []  # to keep: key, regime, baseline

    def shots(self, shots: Iterable[Shot]) -> None:
        """Recorded shots of a batch (any machines, in arrival order); trial shots are
        never charted."""
        by_chart: dict[ChartKey, list[Shot]] = {}
        for shot in shots:
            if shot.trial:
                continue
            by_chart.setdefault((shot.key.plant, shot.key.machine, shot.die), []).append(shot)
        for key, charted in by_chart.items():
            self.shots_seen += len(charted)
            charted.sort(key=lambda s: s.at)
            times = [s.at for s in charted]
            chart = self._chart(key)
            for alarm in chart.feed(times, readings([s.params for s in charted], self.names)):
                self.gate.offer(alarm)
            if chart.learnt and chart.baseline is not None:
                self.learnt.append((key, chart.regime, chart.baseline))
                chart.learnt = False

    def _chart(self, key: ChartKey) -> ChartSet:
        chart = self.charts.get(key)
        if chart is None:
            chart = self.charts[key] = ChartSet(*key, names=self.names, rules=self.rules)
        return chart

    def use_baseline(self, key: ChartKey, baseline: Baseline, regime: int = 0) -> None:
        """Check a die from a stored baseline (learnt before a restart, or set by an
        engineer), not from its next shots."""
        chart = self._chart(key)
        chart.start_from(baseline)
        chart.regime = regime

    def verdict(self, plant: str, machine: str, told: PartVerdict) -> None:
        held = told.verdict is Verdict.QUARANTINE
        share = self.rates.note(plant, machine, held)
        if share is None or not held:
            return
        text = (
            f"{share:.0%} of the last {self.rates.window} parts of {machine} held in "
            f"QUARANTINE (limit {self.rates.share:.0%}); latest: {told.reason or 'no reason'}"
        )
        alarm = Alarm(plant, machine, None, "quarantine", QUARANTINE_RATE, text, told.decided_at)
        self.gate.offer(alarm)

    def raise_(self, alarm: Alarm) -> None:
        self.gate.offer(alarm)

    def due(self, now: float) -> list[Alarm]:
        return self.gate.due(now)
