"""An evaluation report a quality engineer can read: one HTML page, PNGs embedded."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on a plant server
import matplotlib.pyplot as plt
import numpy as np

from castline.vision.evaluate import Evaluation
from castline.vision.images import read_image
from castline.vision.model import InspectionModel
from castline.vision.overlay import overlay_png


def _img(png: bytes, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}"{size}>'


def histogram_png(evaluation: Evaluation) -> bytes:
    review, ng = evaluation.thresholds
    ok, bad = evaluation.scores(False), evaluation.scores(True)
    figure, axes = plt.subplots(figsize=(7, 3.2), dpi=100)
    everything = np.concatenate([ok, bad]) if len(bad) else ok
    bins = np.linspace(float(everything.min()), float(everything.max()), 50).tolist()
    axes.hist(ok, bins=bins, alpha=0.6, label=f"OK parts ({len(ok)})", color="tab:green")
    if len(bad):
        axes.hist(bad, bins=bins, alpha=0.6, label=f"NG parts ({len(bad)})", color="tab:red")
    axes.axvline(review, color="orange", linestyle="--", label=f"REVIEW from {review:.3g}")
    axes.axvline(ng, color="black", linestyle="-", label=f"NG from {ng:.3g}")
    axes.set_xlabel("score")
    axes.set_ylabel("parts")
    axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _confusion_table(evaluation: Evaluation) -> str:
    verdicts = ["OK", "REVIEW", "NG", "QUARANTINE"]
    head = "".join(f"<th>verdict {v}</th>" for v in verdicts)
    rows = "".join(
        f"<tr><th>actual {actual}</th>"
        + "".join(f"<td>{counts[v]}</td>" for v in verdicts)
        + "</tr>"
        for actual, counts in evaluation.confusion.items()
    )
    return f"<table><tr><th></th>{head}</tr>{rows}</table>"


def _metrics_table(evaluation: Evaluation) -> str:
    rows = []
    for name, value in evaluation.metrics.items():
        if name == "confusion":
            continue
        shown = f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))
        rows.append(f"<tr><th>{html.escape(name)}</th><td>{shown}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def write_report(
    evaluation: Evaluation, model: InspectionModel, out: Path, *, worst: int = 4
) -> Path:
    """Write the HTML report to `out`; the worst misses are re-inspected for heat maps."""
    misses = []
    scale = 1.5 * model.region_threshold  # full colour a little above the region threshold
    for item in evaluation.worst(worst):
        image = read_image(item.path)
        result = model.inspect(image)
        kind = "NG part, lowest score" if item.defective else "OK part, highest score"
        caption = html.escape(f"{kind}: {item.path.name} score {item.score:.4g} -> {item.verdict}")
        png = overlay_png(image, result.heatmap, result.regions, scale=scale)
        misses.append(f"<figure>{_img(png, 240)}<figcaption>{caption}</figcaption></figure>")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>castline inspection report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}
figure {{ display: inline-block; margin: 6px; width: 240px; font-size: 12px; }}
</style></head><body>
<h1>Inspection report: model {html.escape(evaluation.model_version)}</h1>
<p>Thresholds: REVIEW from {evaluation.thresholds[0]:.4g}, NG from
{evaluation.thresholds[1]:.4g}. A part passes only with verdict OK.</p>
<h2>Metrics</h2>{_metrics_table(evaluation)}
<h2>Verdicts at the model's thresholds</h2>{_confusion_table(evaluation)}
<h2>Score distribution</h2>{_img(histogram_png(evaluation))}
<h2>Worst misses (heat map: brighter = less like the good parts)</h2>
{"".join(misses)}
</body></html>
"""
    out = Path(out)
    out.write_text(page)
    return out
