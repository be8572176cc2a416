"""Charts rendered as PNG on the server with matplotlib (no JavaScript chart code to ship).

Each function takes plain numbers and returns PNG bytes; the figures are sized for a
control-room screen and use the dashboard's verdict colours.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from matplotlib import font_manager, rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from castline.analytics.charts import ChartWords
from castline.settings import Settings
from castline.web.i18n import Lang, Translator
from castline.web.plant_time import PlantClock

# Fonts with Chinese glyphs, in order of preference (Debian: fonts-wqy-zenhei, fonts-noto-cjk).
CJK_FONTS = ("Noto Sans CJK SC", "WenQuanYi Zen Hei", "Noto Sans SC", "Source Han Sans SC")
ENGLISH = Translator("en")

COLOURS = {
    "OK": "#2e9e5b",
    "NG": "#d64541",
    "REVIEW": "#e5a50a",
    "QUARANTINE": "#7d5ba6",
    None: "#8a96a3",
}
LINE = "#2f6fb0"


@cache
def cjk_font() -> str | None:
    """The first installed font that has Chinese glyphs, or None."""
    found = _installed_cjk()
    if found is None:  # installed after matplotlib cached its font list: add the files
        for path in font_manager.findSystemFonts():
            if any(mark in path.lower() for mark in ("wqy", "notosanscjk", "noto-cjk")):
                font_manager.fontManager.addfont(path)
        found = _installed_cjk()
    return found


def _installed_cjk() -> str | None:
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def words(lang: Lang) -> Translator:
    """Chart labels in `lang`; English where no font could draw the Chinese ones."""
    return Translator(lang) if lang == "en" or cjk_font() else ENGLISH


def plant_words(t: Translator, settings: Settings) -> ChartWords:
    """The analytics charts' words in `t`'s language, their clocks in the plant's zone."""
    zone = PlantClock.of(settings).zone
    kpis = {"oee": "kpi.col.oee", "availability": "kpi.col.availability"}
    kpis |= {"quality_ratio": "kpi.col.quality", "effectiveness": "kpi.col.effectiveness"}
    return ChartWords(
        zone=zone,
        zone_name=zone.key,
        time=t("chart.time"),
        title=t("chart.control_title"),
        baseline=t("chart.baseline"),
        beyond=t("chart.beyond"),
        drift=t("chart.drift"),
        ratio=t("chart.ratio"),
        measured=t("chart.measured"),
        target=t("chart.target"),
        improvement=t("chart.improvement"),
        kpis={name: t(key) for name, key in kpis.items()},
        parameter=t.param,
    )


@contextmanager
def fonts(t: Translator) -> Iterator[None]:
    """Draw in `t`'s language: the CJK font first for Chinese."""
    family = [cjk_font() or "DejaVu Sans", "DejaVu Sans"] if t.lang == "zh" else ["DejaVu Sans"]
    with rc_context({"font.family": family}):
        yield


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
    t: Translator = ENGLISH,
) -> bytes:
    """Readings in shot order, points coloured by verdict; control limits and rule hits
    (shot numbers) drawn when the analytics supplies them."""
    with fonts(t):
        return _trend(series, label, limits, hits, t)


def _trend(
    series: Sequence[dict[str, Any]],
    label: str,
    limits: dict[str, float] | None,
    hits: Sequence[int],
    t: Translator,
) -> bytes:
    fig, ax = _figure()
    points = [(r["shot_number"], r["value"], r.get("verdict")) for r in series]
    points = [p for p in points if p[1] is not None]
    if not points:
        ax.text(0.5, 0.5, t("chart.no_readings"), ha="center", va="center", transform=ax.transAxes)
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
            shown = t(f"chart.limit.{name}") if t.has(f"chart.limit.{name}") else name
            ax.annotate(shown, (xs[-1], value), fontsize=8, color="#555", va="bottom")
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
                label=t("chart.rule_hit"),
            )
            ax.legend(loc="upper left", frameon=False, fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)  # shot counters are large
    ax.set_xlabel(t("chart.shot_number"))
    ax.set_ylabel(label)
    return _png(fig)


def pareto(
    counts: Sequence[tuple[str, int]], title: str | None = None, t: Translator = ENGLISH
) -> bytes:
    """Bars by frequency with the cumulative share on a second axis."""
    with fonts(t):
        return _pareto(counts, title or t("chart.confirmed_defects"), t)


def _pareto(counts: Sequence[tuple[str, int]], title: str, t: Translator) -> bytes:
    fig, ax = _figure(7.0, 3.4)
    if not counts:
        ax.text(0.5, 0.5, t("chart.no_defects"), ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        names = [t.defect(c[0]) for c in counts]  # the defect names of the language
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
        cumulative.set_ylabel(t("chart.cumulative"))
        cumulative.spines[["top"]].set_visible(False)
        ax.tick_params(axis="x", labelrotation=30)
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_ylabel(t("chart.parts"))
    return _png(fig)


def die_life(dies: Sequence[dict[str, Any]], t: Translator = ENGLISH) -> bytes:
    """Share of rated life each die has used; red beyond 90 %."""
    with fonts(t):
        return _die_life(dies, t)


def _die_life(dies: Sequence[dict[str, Any]], t: Translator) -> bytes:
    fig, ax = _figure(7.0, max(1.6, 0.45 * len(dies) + 0.8))
    ax.grid(axis="x", color="#e3e7eb")
    if not dies:
        ax.text(0.5, 0.5, t("chart.no_dies"), ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        used = [100.0 * (d["life_used"] or 0.0) for d in dies]
        colours = [COLOURS["NG"] if u > 90 else COLOURS["REVIEW"] if u > 75 else LINE for u in used]
        ax.barh([d["code"] for d in dies], used, color=colours)
        ax.axvline(100, color="#555", linestyle="--", linewidth=1)
        ax.set_xlim(0, max(110.0, *used))
        ax.invert_yaxis()
    ax.set_xlabel(t("chart.die_life"))
    return _png(fig)
