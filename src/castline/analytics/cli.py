"""`castline report ...` and `castline import shots ...`.

Only typer is imported here; each command imports what it needs, so `castline --help`
stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from castline.options import ConfigOption, settings_or_exit

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from castline.analytics.config import AnalyticsConfig

report_app = typer.Typer(
    help="Process analytics: KPIs, SPC, root cause, maintenance, benefit, predictive quality.",
    no_args_is_help=True,
)
import_app = typer.Typer(help="Import history from a plant's MES export.", no_args_is_help=True)

Analytics = Annotated[
    Path | None,
    typer.Option(
        "--analytics",
        help="analytics TOML for this run: spec limits per die, PRI, lines "
        "(default: the setting analytics_file, as the dashboard uses).",
    ),
]
Plant = Annotated[str | None, typer.Option(help="plant id (default: from settings).")]
Machine = Annotated[str | None, typer.Option(help="only this machine.")]
Die = Annotated[str | None, typer.Option(help="only this die.")]
Since = Annotated[str | None, typer.Option(help="from (ISO date or time, UTC).")]
Until = Annotated[
    str | None, typer.Option(help="until, exclusive (default: after the newest shot).")
]
Days = Annotated[int, typer.Option(help="range length when --since is not given.")]
Out = Annotated[Path | None, typer.Option("--out", help="folder for CSV, JSON, PNG, HTML files.")]


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO date or time (2019-02-01T06:00)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _at(text: str) -> datetime:
    value = _when(text)
    assert value is not None
    return value


def _open(config: Path | None, plant: str | None) -> tuple[Engine, str]:
    from castline.store import database

    settings = settings_or_exit(config)
    return database.open_store(settings.db_url), plant or settings.plant


def _analytics(path: Path | None, config: Path | None) -> AnalyticsConfig:
    """The file given for this run, else the plant's (the settings' analytics_file)."""
    from castline.analytics.config import of

    try:  # with the settings' plant calendar either way: shifts count in plant time
        return of(settings_or_exit(config), path)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _range(
    engine: Engine, plant: str, since: str | None, until: str | None, days: int
) -> tuple[datetime, datetime]:
    from sqlalchemy import func, select

    from castline.store import tables as t

    end = _when(until)
    if end is None:
        with engine.connect() as conn:
            newest = conn.execute(
                select(func.max(t.shots.c.at)).where(t.shots.c.plant == plant)
            ).scalar()
        if newest is not None and newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        end = (newest + timedelta(seconds=1)) if newest else datetime.now(UTC)
    start = _when(since) or end - timedelta(days=days)
    return start, end


def _write(out: Path | None, name: str, data: bytes | str) -> None:
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    typer.echo(f"wrote {path}")


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{v:.1%}"


@report_app.command("kpi")
def report_kpi(
    plant: Plant = None,
    machine: Machine = None,
    since: Since = None,
    until: Until = None,
    days: Days = 7,
    by: Annotated[str, typer.Option(help="shift, day, week or total.")] = "day",
    level: Annotated[str, typer.Option(help="machine, line or plant.")] = "machine",
    out: Out = None,
    config: ConfigOption = None,
    analytics: Analytics = None,
) -> None:
    """ISO 22400-2 KPIs (OEE, availability, effectiveness, quality, FPY, MTBF, MTTR)."""
    import pandas as pd

    from castline.analytics import charts, kpis

    engine, plant_id = _open(config, plant)
    start, end = _range(engine, plant_id, since, until, days)
    chosen = _analytics(analytics, config)
    try:
        rows = kpis.kpi_table(
            engine, plant_id, start, end, by=by, level=level, machine=machine, config=chosen
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    for r in rows:
        began = chosen.calendar.local(datetime.fromisoformat(r["period_start"]))
        shift = f" {r['shift'] or '-':>3}" if by == "shift" else ""  # between shifts: -
        typer.echo(
            f"{r['unit']:14} {began:%Y-%m-%d %H:%M} {began.tzname()}{shift}  OEE {_pct(r['oee'])}"
            f"  A {_pct(r['availability'])}  E {_pct(r['effectiveness'])}"
            f"  Q {_pct(r['quality_ratio'])}  FPY "
            f"{_pct(r['first_pass_yield'])}  scrap {_pct(r['scrap_ratio'])}  parts {r['pq']}"
        )
    for note in sorted({n for r in rows for n in r["defaults_used"]}):
        typer.echo(f"note: {note}")
    if not rows:
        typer.echo(f"no machine states or shots for plant {plant_id} from {start} to {end}")
    _write(
        out,
        "kpi.csv",
        pd.DataFrame(rows).drop(columns="downtime_by", errors="ignore").to_csv(index=False),
    )
    _write(out, "kpi.png", charts.kpi_trend_png(rows))
    _write(out, "kpi.json", json.dumps(rows, indent=1))


@report_app.command("spc")
def report_spc(
    plant: Plant = None,
    machine: Machine = None,
    die: Die = None,
    since: Since = None,
    until: Until = None,
    days: Days = 30,
    baseline: Annotated[int, typer.Option(help="shots that set the control limits.")] = 500,
    parameter: Annotated[str | None, typer.Option(help="chart only this parameter.")] = None,
    subgroup: Annotated[
        int, typer.Option(help="shots per subgroup: 1 I-MR, 2-10 X-bar/R, more X-bar/S.")
    ] = 1,
    out: Out = None,
    config: ConfigOption = None,
    analytics: Analytics = None,
) -> None:
    """Control charts with Nelson rules, EWMA and CUSUM; raises de-duplicated alarms."""
    from castline.analytics import charts, spc
    from castline.domain.units import NAMES

    engine, plant_id = _open(config, plant)
    start, end = _range(engine, plant_id, since, until, days)
    params = (parameter,) if parameter else NAMES
    limits = _analytics(analytics, config)
    results = spc.monitor(
        engine,
        plant_id,
        machine=machine,
        die=die,
        parameters=params,
        since=start,
        until=end,
        baseline_shots=baseline,
        subgroup=subgroup,
        config=limits,
    )
    for r in results:
        typer.echo(_chart_line(r, spc.DEFAULT_RULES))
        if out is not None:
            chart = spc.stored_chart(
                engine, plant_id, r["machine"], r["parameter"], die=r["die"], since=start,
                until=end, baseline_shots=baseline, subgroup=subgroup, config=limits,
            )  # fmt: skip
            png = charts.machine_chart_png(chart, plant_id, r["machine"])
            _write(out, f"spc_{r['machine']}_{r['parameter']}.png", png)
    if not results:
        typer.echo(f"too few shots for a chart (baseline {baseline}) in {start}..{end}")
    unique = {a["id"]: a for r in results for a in r["alarms"]}  # a die's set-point alarm
    raised = sorted(unique.values(), key=spc.rank)
    critical = sum(a["severity"] == "critical" for a in raised)
    typer.echo(f"{len(raised)} alarms ({critical} critical) on {len(results)} charts")
    _write(out, "spc.json", json.dumps(results, indent=1))


def _chart_line(r: dict[str, Any], alarm_rules: Iterable[str]) -> str:
    """One chart in a line: its capability index, regimes and the rules that may alarm
    (the opt-in ones are in spc.json and on the chart)."""
    index = r["capability_index"]
    value = r["cpk"] if index == "Cpk" else r["ppk"]
    shown = "n/a" if value is None else f"{value:.2f}"
    fired = ", ".join(f"{k} x{v['count']}" for k, v in r["rules"].items() if k in alarm_rules)
    shifts = f"; {len(r['regimes'])} regimes" if len(r["regimes"]) > 1 else ""
    misfit = f"; baseline does not fit: {r['misfit']}" if r["misfit"] else ""
    where = f"{r['machine']}/{r['die']} {r['parameter']}"
    if r["unit"] == "source units":  # the source's unit is doubtful (domain.units)
        where += " [source units]"
    return f"{where}: {index} {shown}{shifts}; {fired or 'in control'}{misfit}"


@report_app.command("rootcause")
def report_rootcause(
    plant: Plant = None,
    machine: Machine = None,
    die: Die = None,
    since: Since = None,
    until: Until = None,
    days: Days = 30,
    pooled: Annotated[
        bool, typer.Option(help="all dies together (a die mix can pose as a cause).")
    ] = False,
    out: Out = None,
    config: ConfigOption = None,
) -> None:
    """Rank process parameters by how much they explain NG parts, within each die."""
    from castline.analytics import rootcause

    engine, plant_id = _open(config, plant)
    start, end = _range(engine, plant_id, since, until, days)
    result = rootcause.report(engine, plant_id, machine, die, start, end, pooled=pooled)
    scope = "dies pooled" if pooled else "within each die"
    typer.echo(f"{result['ng']} NG of {result['shots']} castings with a known outcome ({scope})")
    if result["unit_note"]:
        typer.echo(f"note: {result['unit_note']}")
    for f in result["findings"]:
        mark = "" if f["significant"] else "  (not significant)"
        typer.echo(f"- {f['text']}{mark}")
    for d in result["defects"]:
        typer.echo(
            f"defect {d['defect_type']} ({d['parts']} parts): usual causes "
            f"{', '.join(d['usual_causes']) or 'unknown'}; data confirms "
            f"{', '.join(d['confirmed']) or 'none'}"
        )
    for c in result["cavities"]:  # scrap by cavity, for dies of several
        typer.echo(f"scrap by cavity: {c['text']}")
    _write(out, "rootcause.json", json.dumps(result, indent=1, default=str))


@report_app.command("maintenance")
def report_maintenance(
    plant: Plant = None,
    since: Since = None,
    until: Until = None,
    days: Days = 30,
    out: Out = None,
    config: ConfigOption = None,
    analytics: Analytics = None,
) -> None:
    """Die life and NG trend with a recommendation; downtime by cause; MTBF and MTTR."""
    from castline.analytics import maintenance

    engine, plant_id = _open(config, plant)
    start, end = _range(engine, plant_id, since, until, days)
    result = maintenance.report(engine, plant_id, start, end, _analytics(analytics, config))
    for d in result["dies"]:
        typer.echo(d["reason"])
    for row in result["downtime"][:15]:
        typer.echo(
            f"downtime {row['machine']}: {row['stop_class']} ({row['reason']}) "
            f"{row['hours']:.1f} h in {row['stops']} stops"
        )
    for m in result["machines"]:
        mtbf = "n/a" if m["mtbf_s"] is None else f"{m['mtbf_s'] / 3600:.1f} h"
        mttr = "n/a" if m["mttr_s"] is None else f"{m['mttr_s'] / 60:.0f} min"
        typer.echo(f"{m['unit']}: {m['failures']} failures, MTBF {mtbf}, MTTR {mttr}")
    _write(out, "maintenance.json", json.dumps(result, indent=1, default=str))


@report_app.command("benefit")
def report_benefit(
    baseline_since: Annotated[
        str | None, typer.Option(help="baseline from (ISO, with zone).")
    ] = None,
    baseline_until: Annotated[str | None, typer.Option(help="baseline until.")] = None,
    since: Annotated[str | None, typer.Option(help="comparison period from.")] = None,
    until: Annotated[str | None, typer.Option(help="comparison until (default: now).")] = None,
    resample_by: Annotated[
        str | None, typer.Option(help="bootstrap blocks: day, shift, hour.")
    ] = None,
    resamples: Annotated[int | None, typer.Option(min=100, max=100_000)] = None,
    seed: Annotated[int | None, typer.Option(min=0)] = None,
    plant: Plant = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the report as JSON.")] = False,
    out: Out = None,
    config: ConfigOption = None,
    analytics: Analytics = None,
) -> None:
    """The four targets under the plan of the analytics file ([benefit]); options given
    here replace its values and the report says so. Intervals by bootstrap; a target is
    met only when its whole interval clears it."""
    from castline.analytics import benefit, charts
    from castline.analytics.benefit_plan import PlanError, resample_unit, when

    engine, plant_id = _open(config, plant)
    cfg = _analytics(analytics, config)
    try:
        given = {
            k: when(v, (k,)) if v is not None else None
            for k, v in (("baseline_since", baseline_since), ("baseline_until", baseline_until),
                         ("since", since), ("until", until))
        }  # fmt: skip
        unit = resample_unit(resample_by) if resample_by is not None else None
        plan = cfg.benefit.merged(**given, resample_by=unit, resamples=resamples, seed=seed)
        result = benefit.report(engine, plant_id, plan, cfg)
    except PlanError as exc:
        typer.echo(f"{exc} (declare [benefit] in the analytics file or give the option)", err=True)
        raise typer.Exit(2) from None
    if json_out:
        typer.echo(json.dumps(result, indent=1, default=str))
    else:
        _print_benefit(result)
    if out is not None:
        base = benefit.Period(plan.baseline_since, plan.baseline_until)  # type: ignore[arg-type]
        now = benefit.Period(plan.since, datetime.fromisoformat(result["plan"]["until"]))  # type: ignore[arg-type]
        images = {
            "Improvement against target": charts.benefit_png(result["rows"]),
            "Plant KPIs per day": charts.kpi_trend_png(
                benefit.daily_kpis(engine, plant_id, base, now, cfg)
            ),
        }
        _write(out, "benefit.html", benefit.to_html(result, images))
        _write(out, "benefit.csv", benefit.to_csv(result))
        _write(out, "benefit.json", json.dumps(result, indent=1, default=str))


def _print_benefit(result: dict[str, Any]) -> None:
    b, c = result["baseline"], result["current"]
    typer.echo(f"baseline   {b['since']} .. {b['until']}: {b['castings']:.0f} castings")
    typer.echo(f"comparison {c['since']} .. {c['until']}: {c['castings']:.0f} castings")
    for r in result["rows"]:
        change = "n/a" if r["change_pct"] is None else f"{r['change_pct']:+.1f} %"
        span = "" if r["low_pct"] is None else f" [{r['low_pct']:+.1f} .. {r['high_pct']:+.1f}]"
        typer.echo(
            f"{r['metric']:22} {change}{span} (target {r['target_pct']:+.0f} %): {r['verdict']}"
        )
    typer.echo("assumptions:")
    for a in result["assumptions"]:
        typer.echo(f"- {a}")


@report_app.command("predict")
def report_predict(
    data: Annotated[
        Path | None, typer.Option(help="KAMP process folder (train/test CSVs).")
    ] = None,
    quick: Annotated[bool, typer.Option(help="smaller model, for a fast check.")] = False,
    unseen_dies: Annotated[
        bool,
        typer.Option(
            "--unseen-dies", help="judge each die as if new: learnt from the other dies only."
        ),
    ] = False,
    plant: Plant = None,
    die: Die = None,
    train_until: Annotated[
        str | None,
        typer.Option(
            help="with --die: learn from stored shots before this time, watch the die's after."
        ),
    ] = None,
    out: Out = None,
    config: ConfigOption = None,
) -> None:
    """Predictive quality: ROC AUC with its interval beside a process-window rule,
    precision at a 5 % alarm rate; or, with --die and --train-until, a scrap-risk watch
    on stored shots (per-shot risk in scrap_risk.csv under --out)."""
    if die and train_until:
        _watch_risk(config, plant, die, train_until, out)
        return
    from castline.analytics import mapping, predict

    folder = data or settings_or_exit(config).data / "kamp" / "process"
    judge = predict.unseen_dies if unseen_dies else predict.time_split
    try:
        results = judge(folder, mapping.KAMP, quick=quick)
    except FileNotFoundError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    for r in results:
        typer.echo(_predict_line(r))
    _write(out, "predict.json", json.dumps(results, indent=1))


def _predict_line(r: dict[str, Any]) -> str:
    lead = "n/a" if r["median_lead_shots"] is None else f"{r['median_lead_shots']:.0f}"
    auc = "n/a (one class)" if r["roc_auc"] is None else f"{r['roc_auc']:.3f}"
    if r["roc_auc_95"]:
        auc += " [{:.3f}, {:.3f}]".format(*r["roc_auc_95"])
    rule = r["process_window_rule"]["roc_auc"]
    return (
        f"die {r['die']} (learnt from {', '.join(r['learnt_from'])}): ROC AUC {auc}, "
        f"process-window rule {'n/a' if rule is None else f'{rule:.3f}'}; precision at 5 % "
        f"alarms {r['precision_at_5pct']:.1%} (NG rate {r['test_ng'] / r['test_shots']:.1%}); "
        f"risk alarm before {r['preceded_by_risk_alarm']}/{r['rises_seen_by_inspection']} "
        f"rises seen by inspection, median lead {lead} shots; "
        f"{r['out_of_window_shots']} shots with a reading out of window"
    )


def _watch_risk(
    config: Path | None, plant: str | None, die: str, train_until: str, out: Path | None
) -> None:
    from castline.analytics import predict

    engine, plant_id = _open(config, plant)
    try:
        watch = predict.scrap_risk(engine, plant_id, die, _at(train_until))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    result = predict.raise_risk_alarms(engine, plant_id, watch)
    typer.echo(
        f"die {die}: {result['shots_scored']} shots scored "
        f"({result['out_of_window_shots']} with a reading out of window), "
        f"{len(result['alarms'])} scrap_risk alarms at {', '.join(result['rises']) or '-'}"
    )
    _write(out, "scrap_risk.json", json.dumps(result, indent=1))
    _write(out, "scrap_risk.csv", watch.risk.to_csv(index=False))


@report_app.command("alarms")
def report_alarms(
    plant: Plant = None,
    machine: Machine = None,
    all_alarms: Annotated[bool, typer.Option("--all", help="cleared ones too.")] = False,
    ack: Annotated[int | None, typer.Option(help="acknowledge this alarm id.")] = None,
    who: Annotated[str | None, typer.Option(help="who acknowledges.")] = None,
    cause: Annotated[
        str | None, typer.Option(help="the named cause (melt, die_temperature, sensor, ...).")
    ] = None,
    comment: Annotated[str, typer.Option(help="what caused it and what was done.")] = "",
    clear: Annotated[int | None, typer.Option(help="clear this alarm id.")] = None,
    config: ConfigOption = None,
) -> None:
    """List alarms; acknowledge one (--ack ID --who NAME --cause CAUSE --comment TEXT) or
    clear one."""
    from castline.analytics import alarms

    engine, plant_id = _open(config, plant)
    if ack is not None:
        _acknowledge(engine, plant_id, ack, who, cause, comment)
    if clear is not None:
        done = alarms.clear(engine, clear)
        typer.echo(f"alarm {clear} cleared" if done else f"no open alarm {clear}")
    if ack is None and clear is None:
        for a in alarms.listing(engine, plant_id, open_only=not all_alarms, machine=machine):
            state = "cleared" if a["cleared_at"] else ("acked" if a["acked_by"] else "open")
            typer.echo(f"#{a['id']} {a['severity']:8} {state:7} x{a['count']} {a['message']}")


def _refuse(message: str) -> None:
    """A person's mistake on the command line: one line, exit 2, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _acknowledge(
    engine: Engine, plant: str, alarm_id: int, who: str | None, cause: str | None, comment: str
) -> None:
    """As the dashboard does it: a named cause and a sentence close the alarm, audited.
    A bare acknowledgement would count as a reaction with no cause in the benefit report."""
    from sqlalchemy import select

    from castline.domain.alarms import CAUSES
    from castline.store import alarms as stored
    from castline.store import tables as t
    from castline.web.auth import audit

    if not who:
        _refuse("--ack needs --who NAME")
    if cause not in CAUSES:
        named = "no --cause" if cause is None else f"--cause {cause!r} is not a named cause"
        _refuse(f"{named}: one of {', '.join(CAUSES)}")
    if not comment.strip():
        _refuse("--ack needs --comment TEXT: what caused it and what was done")
    assert who is not None and cause is not None
    with engine.connect() as conn:  # only an alarm of the plant the command is run for
        row = conn.execute(
            select(t.alarms.c.id).where(t.alarms.c.id == alarm_id, t.alarms.c.plant == plant)
        ).first()
    if row is None or not stored.close_with_cause(engine, alarm_id, who, cause, comment):
        typer.echo(f"no open alarm {alarm_id} in plant {plant}")
        return
    detail = {"cause": cause, "comment": comment.strip(), "via": "cli"}
    audit(engine, who, "alarm.ack", f"alarm/{alarm_id}", detail, [plant])
    typer.echo(f"alarm {alarm_id} acknowledged: {cause}")


@import_app.command("shots")
def import_shots(
    csv: Annotated[
        Path, typer.Argument(help="MES export (CSV) to import.", exists=True, dir_okay=False)
    ],
    mapping_name: Annotated[str, typer.Option("--mapping", help="column mapping (kamp).")] = "kamp",
    encoding: Annotated[
        str | None,
        typer.Option(
            help="text encoding of the file (utf-8, cp949, gb18030...); default: detected."
        ),
    ] = None,
    plant: Plant = None,
    limit: Annotated[int | None, typer.Option(min=1, help="read only the first N rows.")] = None,
    config: ConfigOption = None,
) -> None:
    """Import historical shots; running it again on the same file adds nothing."""
    from castline.analytics import importer, mapping
    from castline.analytics.export_file import ExportError
    from castline.cli_text import say

    try:
        chosen = mapping.get(mapping_name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    engine, plant_id = _open(config, plant)
    try:
        report = importer.import_shots(
            engine, csv, chosen, plant_id, encoding=encoding, limit=limit
        )
    except ExportError as exc:
        typer.echo(say("error", message=str(exc)), err=True)
        raise typer.Exit(2) from None
    for line in report.lines():
        typer.echo(line)
    if report.interrupted:
        typer.echo(say("import.interrupted"), err=True)
        raise typer.Exit(130)
