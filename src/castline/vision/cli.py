"""`castline vision ...`: train, evaluate and inspect models; manage their versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from castline.options import ConfigOption, settings_or_exit

if TYPE_CHECKING:
    from castline.vision.registry import ModelRegistry

app = typer.Typer(help="Visual inspection: train, evaluate, inspect, register models.")


def _photos(folder: Path) -> list[Path]:
    from castline.datasets import images

    if not folder.is_dir():
        typer.echo(f"{folder} is not a folder of photos", err=True)
        raise typer.Exit(2)
    found = images(folder)
    if not found:
        typer.echo(f"{folder} holds no .jpeg/.jpg/.png/.bmp photos", err=True)
        raise typer.Exit(2)
    return found


CELL_HELP = (
    "Side of a memory cell in patches; 0: one memory for the whole photo. "
    "Default: chosen by how well the photos line up."
)
PART_MASK_HELP = (
    "Inspect only the part (found from the good photos) and a margin around it, not the "
    "table or belt; --no-part-mask: the whole photo."
)


@app.command()
def train(
    good_dir: Annotated[Path, typer.Argument(help="Folder of good castings.")],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    defects: Annotated[
        Path | None, typer.Option("--defects", help="Folder of defective castings (optional).")
    ] = None,
    backbone: Annotated[str, typer.Option(help="lite0 or lite1.")] = "lite0",
    input_size: Annotated[
        int | None, typer.Option(help="Model input side in px (default: backbone's native).")
    ] = None,
    bank_images: Annotated[
        int | None, typer.Option(help="At most this many good photos (quick models); default all.")
    ] = None,
    holdout: Annotated[
        int, typer.Option(help="Good photos kept back for your own check (default none).")
    ] = 0,
    folds: Annotated[int, typer.Option(help="Folds of the out-of-fold calibration.")] = 5,
    cell: Annotated[int | None, typer.Option(help=CELL_HELP)] = None,
    target_frr: Annotated[float, typer.Option(help="False-reject rate for NG.")] = 0.02,
    target_escape: Annotated[
        float | None, typer.Option(help="Escape rate to meet where defects are given.")
    ] = None,
    margin: Annotated[
        float, typer.Option(help="Share of each photo side left out of the score.")
    ] = 0.0,
    part_mask: Annotated[bool, typer.Option(help=PART_MASK_HELP)] = True,
) -> None:
    """Learn a part's normal look from GOOD_DIR, calibrate, write a model folder."""
    from castline.vision.train import TrainConfig, train_model

    config = TrainConfig(
        input_size=input_size,
        bank_images=bank_images,
        holdout=holdout,
        folds=folds,
        cell=cell,
        target_frr=target_frr,
        target_escape=target_escape,
        margin=margin,
        part_mask=part_mask,
    )
    try:
        model = train_model(
            _photos(good_dir),
            out,
            defect_paths=_photos(defects) if defects else None,
            backbone=backbone,
            config=config,
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{model.version} -> {out}")
    typer.echo(json.dumps(model.manifest["training"]["photos"], indent=2))
    typer.echo(json.dumps(model.manifest["metrics"], indent=2))


@app.command("eval")
def evaluate_command(
    model_path: Annotated[Path, typer.Argument(help="Model folder or ONNX file.")],
    ok: Annotated[Path, typer.Option("--ok", help="Folder of good castings.")],
    ng: Annotated[Path, typer.Option("--ng", help="Folder of defective castings.")],
    json_out: Annotated[Path, typer.Option("--json", help="Metrics JSON file to write.")],
    masks: Annotated[
        Path | None, typer.Option("--masks", help="Defect masks: same-named PNGs, non-zero=defect.")
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="HTML report to write.")] = None,
) -> None:
    """Score labelled photos; write metrics (and an HTML report)."""
    from castline.vision.evaluate import evaluate
    from castline.vision.model import InspectionModel

    model = InspectionModel.load(model_path, threads=1)
    result = evaluate(model, _photos(ok), _photos(ng), masks=masks)
    json_out.write_text(json.dumps(result.metrics, indent=2))
    typer.echo(json.dumps(result.metrics, indent=2))
    if report is not None:
        from castline.vision.report import write_report

        typer.echo(f"report -> {write_report(result, model, report)}")


@app.command()
def inspect(
    model_path: Annotated[Path, typer.Argument(help="Model folder or ONNX file.")],
    images: Annotated[list[Path], typer.Argument(help="Photos to inspect.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for heat-map overlay PNGs.")
    ] = None,
) -> None:
    """Print verdict and score of each photo; write overlays into --out."""
    from tqdm import tqdm

    from castline.vision.images import read_image
    from castline.vision.model import InspectionModel
    from castline.vision.overlay import overlay_png

    model = InspectionModel.load(model_path)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    for path in tqdm(images, desc="inspect", unit="img", disable=len(images) < 10):
        image = read_image(path)
        result = model.inspect(image)
        regions = ", ".join(f"{r.w}x{r.h}@{r.x},{r.y}" for r in result.regions)
        tqdm.write(f"{path}\t{result.verdict}\t{result.score:.5g}\t{regions}")
        if out is not None:
            png = overlay_png(
                image, result.heatmap, result.regions, scale=1.5 * model.region_threshold
            )
            (out / f"{path.stem}.overlay.png").write_bytes(png)


def _registry(config: Path | None) -> ModelRegistry:
    from castline.store.database import open_store
    from castline.vision.registry import ModelRegistry

    return ModelRegistry(open_store(settings_or_exit(config).db_url))


@app.command()
def register(
    model_path: Annotated[Path, typer.Argument(help="Model folder or ONNX file.")],
    die: Annotated[str, typer.Option("--die")],
    view: Annotated[str, typer.Option("--view")],
    activate: Annotated[bool, typer.Option("--activate", help="Make it the active model.")] = False,
    config: ConfigOption = None,
) -> None:
    """Record a trained model for a die and camera view."""
    from castline.vision.model import InspectionModel

    model = InspectionModel.load(model_path)
    version = _registry(config).register(
        die, view, model_path.resolve(), model.manifest, activate=activate
    )
    typer.echo(f"{die}/{view}: registered {version}{' (active)' if activate else ''}")


@app.command()
def activate(
    die: Annotated[str, typer.Option("--die")],
    view: Annotated[str, typer.Option("--view")],
    version: Annotated[str, typer.Argument(help="Registered version to activate.")],
    config: ConfigOption = None,
) -> None:
    """Make a registered version the one the line uses."""
    from castline.vision.registry import RegistryError

    try:
        _registry(config).activate(die, view, version)
    except RegistryError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{die}/{view}: active {version}")


@app.command()
def rollback(
    die: Annotated[str, typer.Option("--die")],
    view: Annotated[str, typer.Option("--view")],
    config: ConfigOption = None,
) -> None:
    """Go back to the version registered before the active one."""
    from castline.vision.registry import RegistryError

    try:
        version = _registry(config).rollback(die, view)
    except RegistryError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{die}/{view}: active {version}")


@app.command("list")
def list_models(config: ConfigOption = None) -> None:
    """Registered models per die and view; * marks the active one."""
    for row in _registry(config).all():
        mark = "*" if row["active"] else " "
        auroc = row["metrics"].get("out_of_fold", {}).get("image_auroc")
        shown = f"  out-of-fold AUROC {auroc:.4f}" if isinstance(auroc, float) else ""
        typer.echo(f"{mark} {row['die']}/{row['view']}  {row['version']}{shown}  {row['path']}")
