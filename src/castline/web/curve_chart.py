"""A part's shot curve on its die's golden envelope, beside the shots before it: plunger
position, velocity and metal pressure over time from switch-over, one panel each (PNG,
drawn like the other charts in `web/charts.py`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from castline.domain.curve import ShotCurve
from castline.domain.envelope import Envelope, aligned
from castline.web.charts import COLOURS, ENGLISH, LINE, _png, fonts
from castline.web.i18n import Translator

PANELS = (  # trace, its label key and unit
    ("position_mm", "curve.position", "mm"),
    ("velocity_mps", "curve.velocity", "m/s"),
    ("pressure_bar", "curve.pressure", "bar"),
)
BAND = "#cfe8d6"
EARLIER = "#a9b4bf"


def shot_curve_png(
    curve: ShotCurve | None,
    envelope: Envelope | None,
    earlier: Sequence[ShotCurve] = (),
    breached: bool = False,
    t: Translator = ENGLISH,
) -> bytes:
    with fonts(t):
        return _draw(curve, envelope, earlier, breached, t)


def _draw(
    curve: ShotCurve | None,
    envelope: Envelope | None,
    earlier: Sequence[ShotCurve],
    breached: bool,
    t: Translator,
) -> bytes:
    fig = Figure(figsize=(12.0, 7.2))
    axes = fig.subplots(len(PANELS), 1, sharex=True)
    this = aligned(curve) if curve is not None else None
    for ax, (trace, label, unit) in zip(axes, PANELS, strict=True):
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#e3e7eb")
        ax.set_ylabel(f"{t(label)}, {unit}")
        if envelope is not None:
            ms = (np.arange(len(envelope)) - envelope.before) / envelope.rate_hz * 1000
            ax.fill_between(ms, envelope.low[trace], envelope.high[trace], color=BAND, lw=0)
            ax.set_xlim(ms[0], ms[-1])  # the window the envelope judges: around the fast shot
        for old in earlier:
            _line(ax, old, trace, EARLIER, 0.8)
        if this is not None and curve is not None:
            colour = COLOURS["NG"] if breached else LINE
            _line(ax, curve, trace, colour, 1.6)
    if this is None:
        axes[0].text(
            0.5, 0.5, t("curve.none"), ha="center", va="center", transform=axes[0].transAxes
        )
    axes[-1].set_xlabel(t("curve.time_from_switchover"))
    handles = [
        axes[0].plot([], [], color=COLOURS["NG"] if breached else LINE, lw=1.6)[0],
        axes[0].plot([], [], color=EARLIER, lw=0.8)[0],
        axes[0].fill([], [], color=BAND)[0],
    ]
    labels = [t("curve.this_shot"), t("curve.earlier_shots", n=len(earlier)), t("curve.envelope")]
    axes[0].legend(handles, labels, loc="upper left", frameon=False, fontsize=8, ncol=3)
    return _png(fig)


def _line(ax: object, curve: ShotCurve, trace: str, colour: str, width: float) -> None:
    found = aligned(curve)
    if found is None:
        return
    switch, traces = found
    ms = (np.arange(len(curve)) - switch) / curve.rate_hz * 1000
    ax.plot(ms, traces[trace], color=colour, lw=width)  # type: ignore[attr-defined]


def features_png(
    rows: Sequence[dict[str, object]], labels: dict[str, str], t: Translator = ENGLISH
) -> bytes:
    """Each curve feature over shots (oldest left), one small panel each; shots outside
    their die's envelope in red."""
    with fonts(t):
        names = list(labels) if rows else list(labels)[:1]  # no rows: one panel says so
        fig = Figure(figsize=(12.0, 1.7 * len(names)))
        axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
        xs = [r["shot_number"] for r in rows]
        colours = [COLOURS["NG"] if r["envelope_breach"] else LINE for r in rows]
        for ax, name in zip(axes, names, strict=True):
            ax.spines[["top", "right"]].set_visible(False)
            ax.grid(axis="y", color="#e3e7eb")
            ys = [np.nan if r[name] is None else r[name] for r in rows]
            ax.plot(xs, ys, color=LINE, lw=0.8)
            ax.scatter(xs, ys, c=colours, s=8)
            ax.set_ylabel(labels[name], fontsize=8, rotation=0, ha="right", va="center")
        if not rows:
            axes[0].text(0.5, 0.5, t("chart.no_readings"), ha="center", transform=axes[0].transAxes)
            axes[0].set_axis_off()
            return _png(fig)
        axes[-1].set_xlabel(t("chart.shot_number"))
        axes[-1].ticklabel_format(axis="x", style="plain", useOffset=False)
        return _png(fig)
