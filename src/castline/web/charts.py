"""Charts rendered as PNG on the server with matplotlib (no JavaScript chart code to ship).

Each function takes plain numbers and returns PNG bytes; the figures are sized for a
control-room screen and use the dashboard's verdict colours.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

COLOURS = {
    "OK": "#2e9e5b",
    "NG": "#d64541",
    "REVIEW": "#e5a50a",
    "QUARANTINE": "#7d5ba6",
    None: "#8a96a3",
}
LINE = "#2f6fb0"


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=110, bbox_inches="tight")
    return out.getvalue()


def _figure(width: float = 12.0, height: float = 3.6) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e3e7eb")
    return fig, ax


def trend(
    series: Sequence[dict[str, Any]],
    label: str,
    limits: dict[str, float] | None = None,
    hits: Sequence[int] = (),
) -> bytes:
    """Readings in shot order, points coloured by verdict; control limits and rule hits
    (shot numbers) drawn when the analytics supplies them."""
    fig, ax = _figure()
    points = [(r["shot_number"], r["value"], r.get("verdict")) for r in series]
    points = [p for p in points if p[1] is not None]
    if not points:
        ax.text(0.5, 0.5, "no readings yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], color=LINE, linewidth=1, zorder=1)
        ax.scatter(
            xs, [p[1] for p in points], c=[COLOURS.get(p[2], COLOURS[None]) for p in points], s=18
        )
        for name, value in (limits or {}).items():
            style = "-" if name in ("center", "mean") else "--"
            ax.axhline(value, color="#555", linestyle=style, linewidth=1)
            ax.annotate(name, (xs[-1], value), fontsize=8, color="#555", va="bottom")
        hit = set(hits)
        flagged = [p for p in points if p[0] in hit]
        if flagged:
            ax.scatter(
                [p[0] for p in flagged],
                [p[1] for p in flagged],
                s=60,
                facecolors="none",
                edgecolors=COLOURS["NG"],
                linewidths=1.5,
                label="rule hit",
            )
            ax.legend(loc="upper left", frameon=False, fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)  # shot counters are large
    ax.set_xlabel("shot number")
    ax.set_ylabel(label)
    return _png(fig)


def pareto(counts: Sequence[tuple[str, int]], title: str = "confirmed defects") -> bytes:
    """Bars by frequency with the cumulative share on a second axis."""
    fig, ax = _figure(7.0, 3.4)
    if not counts:
        ax.text(
            0.5, 0.5, "no confirmed defects yet", ha="center", va="center", transform=ax.transAxes
        )
        ax.set_axis_off()
    else:
        names = [c[0].replace("_", " ") for c in counts]
        values = [c[1] for c in counts]
        ax.bar(names, values, color=COLOURS["NG"])
        total = sum(values)
        running, share = 0, []
        for value in values:
            running += value
            share.append(100.0 * running / total)
        cumulative = ax.twinx()
        cumulative.plot(names, share, color="#333", marker="o", markersize=3)
        cumulative.set_ylim(0, 105)
        cumulative.set_ylabel("cumulative %")
        cumulative.spines[["top"]].set_visible(False)
        ax.tick_params(axis="x", labelrotation=30)
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_ylabel("parts")
    return _png(fig)


def die_life(dies: Sequence[dict[str, Any]]) -> bytes:
    """Share of rated life each die has used; red beyond 90 %."""
    fig, ax = _figure(7.0, max(1.6, 0.45 * len(dies) + 0.8))
    ax.grid(axis="x", color="#e3e7eb")
    if not dies:
        ax.text(0.5, 0.5, "no dies recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        used = [100.0 * (d["life_used"] or 0.0) for d in dies]
        colours = [COLOURS["NG"] if u > 90 else COLOURS["REVIEW"] if u > 75 else LINE for u in used]
        ax.barh([d["code"] for d in dies], used, color=colours)
        ax.axvline(100, color="#555", linestyle="--", linewidth=1)
        ax.set_xlim(0, max(110.0, *used))
        ax.invert_yaxis()
    ax.set_xlabel("rated die life used, %")
    return _png(fig)
