"""What every page template gets besides its own data: the language (`t`), plant time
(`when`, `clock` filters), readable part keys and numbers, and the words live.js needs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from starlette.requests import Request

from castline.web import i18n, overview
from castline.web.alarm_text import alarm_text
from castline.web.plant_time import PlantClock


def _moment(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value


@pass_context
def when(ctx: Context, value: datetime | str | None, seconds: bool = False) -> str:
    """A moment in plant time with its zone: `2026-12-01 00:05 CST`."""
    clock: PlantClock = ctx["clock"]
    return clock.show(_moment(value), seconds=seconds)


@pass_context
def clock_time(ctx: Context, value: datetime | None) -> str:
    """Only the plant's wall-clock time and zone: `16:00 CST`."""
    clock: PlantClock = ctx["clock"]
    moment = _moment(value)
    if moment is None:
        return "—"
    return f"{clock.local(moment):%H:%M} {clock.label(moment)}"


def number(value: int | float | None) -> str:
    """Thousands grouped (`1,234,567`): shot counters are long."""
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.0f}"


def details(value: Any) -> str:
    """An audit row's detail as `key: value` pairs, not JSON."""
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if value is None or value == {} or value == []:
        return ""
    if isinstance(value, dict):
        return " · ".join(f"{k.replace('_', ' ')}: {details(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(details(v) for v in value)
    return str(value)


def install(env: Environment) -> None:
    env.filters["when"] = when
    env.filters["clock"] = clock_time
    env.filters["num"] = number
    env.filters["shotno"] = overview.shot_label
    env.filters["details"] = details


def for_request(request: Request) -> dict[str, Any]:
    """The language, plant clock and helpers of one page."""
    lang = i18n.of_request(request)
    t = i18n.Translator(lang)
    return {
        "t": t,
        "lang": lang,
        "html_lang": i18n.HTML_LANG[lang],
        "clock": PlantClock.of(request.app.state.settings),
        "now": datetime.now(UTC),
        "words": t.for_script(),
        "label": overview.part_label,
        "reason": lambda r: overview.describe(r, t),
        "alarm_text": lambda alarm: alarm_text(t, alarm),  # title and figures of an alarm
        "icons": ICONS,
        "scrap_red": f"{100 * overview.SCRAP_RED:g}",
        "scrap_amber": f"{100 * overview.SCRAP_AMBER:g}",
    }


ICONS = {"red": "■", "amber": "▲", "green": "●"}


def remember_language(request: Request, response: Any) -> None:
    """`?lang=zh|en` is kept in a cookie, so the next pages (and charts) follow it."""
    chosen = i18n.parse_lang(request.query_params.get("lang"))
    if chosen is not None and request.cookies.get(i18n.COOKIE) != chosen:
        response.set_cookie(
            i18n.COOKIE, chosen, max_age=365 * 24 * 3600, httponly=True, samesite="lax"
        )


# Why the backlog is unknown, as api.line_status says it, and its id (live.js: WHY).
WHY = {
    "this dashboard runs without --nats": "line.why.no_nats",
    "no line runtime has started on this broker yet": "line.why.no_runtime",
}


def line_text(t: i18n.Translator, line: dict[str, Any], deadline_s: float) -> str:
    """The backlog sentence in the page's language (live.js rebuilds it the same way)."""
    if line.get("level") == "unknown" or "waiting" not in line:
        reason = str(line.get("text", "")).removeprefix("Inspection backlog unknown: ")
        return t("line.unknown", reason=t(WHY[reason]) if reason in WHY else reason)
    text = t("line.counts", waiting=line["waiting"], in_progress=line["in_progress"])
    if line.get("oldest_s") is not None:
        text += t("line.oldest", oldest=f"{line['oldest_s']:.1f}")
    if line.get("level") == "behind":
        text += t("line.behind", deadline=f"{deadline_s:g}")
    return text
