"""`castline vision ...`: train, evaluate and inspect models; manage their versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from castline.options import ConfigOption, settings_or_exit

if TYPE_CHECKING:
    from castline.vision.registry import ModelRegistry

app = typer.Typer(help="Visual inspection: train, evaluate, inspect, register models.")


def _photos(folder: Path) -> list[Path]:
    """The photos of a folder, or a message and exit 2."""
    from castline.cli_text import say
    from castline.datasets import images

    found = images(folder) if folder.is_dir() else []
    if not found:
        problem = "vphotos.no_photos" if folder.is_dir() else "vphotos.not_folder"
        typer.echo(say("error", message=say(problem, path=folder)), err=True)
        raise typer.Exit(2)
    return found


def _each_photo(paths: list[Path]) -> list[Path]:
    """The photos named, a folder standing for the photos in it."""
    return [photo for path in paths for photo in (_photos(path) if path.is_dir() else [path])]


CELL_HELP = (
    "Side of a memory cell in patches; 0: one memory for the whole photo. "
    "Default: chosen by how well the photos line up."
)
QUANTIZE_HELP = (
    "Run the backbone's convolutions in int8 (ranges measured on the good photos): "
    "a third faster, as accurate; the model file carries it. --no-quantize: float."
)
INPUT_SIZE_HELP = (
    "Model input side in px, for square photos; oblong photos get as many pixels shaped "
    "like them (default: backbone's native)."
)
COPIES_HELP = (
    "Turned copies of each good photo for the memory; 0: none. Default: as many as make "
    "about 800 views, where the part looks like itself turned (a round casting)."
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
    backbone: Annotated[
        str | None, typer.Option(help="lite1 (default: finer, as fast as float lite0) or lite0.")
    ] = None,
    input_size: Annotated[int | None, typer.Option(help=INPUT_SIZE_HELP)] = None,
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
    copies: Annotated[int | None, typer.Option(min=0, help=COPIES_HELP)] = None,
    quantize: Annotated[bool, typer.Option(help=QUANTIZE_HELP)] = True,
) -> None:
    """Learn a part's normal look from GOOD_DIR, calibrate, write a model folder."""
    from castline.vision.train import DEFAULT_BACKBONE, TrainConfig, train_model

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
        placements_per_image=copies,
        quantize=quantize,
    )
    try:
        model = train_model(
            _photos(good_dir),
            out,
            defect_paths=_photos(defects) if defects else None,
            backbone=backbone or DEFAULT_BACKBONE,
            config=config,
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    _say_trained(model, out)


def _say_trained(model: InspectionModel, out: Path) -> None:
    """What training made: the version, the input and memory it chose, the photos' use."""
    from castline.cli_text import say

    typer.echo(f"{model.version} -> {out}")
    training = model.manifest["training"]
    height, width = model.manifest["input_size"]
    memory = say("vtrain.per_cell" if training["alignment"]["cell"] else "vtrain.whole_photo")
    part = say("vtrain.part_found" if training["part"]["found"] else "vtrain.part_none")
    count = training["copies"]["per_photo"]
    copies = say("vtrain.copies", count=count) if count else say("vtrain.no_copies")
    typer.echo(
        say("vtrain.summary", height=height, width=width, memory=memory, part=part, copies=copies)
    )
    typer.echo(json.dumps(training["photos"], indent=2))
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
    images: Annotated[list[Path], typer.Argument(help="Photos, or folders of photos.")],
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
    images = _each_photo(images)
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


UPDATE_MODEL_HELP = "Model folder to update (or --die and --view for a registered one)."
DEFECT_TYPE_LENGTH = 40  # as the store keeps a review's defect type


@app.command()
def update(
    model_path: Annotated[Path | None, typer.Argument(help=UPDATE_MODEL_HELP)] = None,
    ok: Annotated[
        Path | None, typer.Option("--ok", help="Folder of photos confirmed good (false rejects).")
    ] = None,
    ng: Annotated[
        Path | None, typer.Option("--ng", help="Folder of photos confirmed defective.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="New model folder (with MODEL).")
    ] = None,
    die: Annotated[str | None, typer.Option("--die", help="Die of a registered model.")] = None,
    view: Annotated[str | None, typer.Option("--view", help="Camera view of it.")] = None,
    reviews: Annotated[
        bool, typer.Option("--reviews", help="Learn the reviews waiting in the database now.")
    ] = False,
    defect_type: Annotated[
        str, typer.Option("--defect-type", help="Defect type of the --ng photos.")
    ] = "defect",
    activate: Annotated[
        bool, typer.Option("--activate", help="Make the new version the line's model.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Fold confirmed photos into a model without training from scratch: good ones into
    its memory, defects into its supervised head (a new version; the old one stays)."""
    from castline.cli_text import say, translated

    def fail(message_id: str, **fields: Any) -> typer.Exit:
        if "detail" in fields:  # raised in English below: in the user's language
            fields["detail"] = translated(str(fields["detail"]))
        typer.echo(say("error", message=say(message_id, **fields)), err=True)
        return typer.Exit(2)

    registered = die is not None or view is not None
    refusal = _update_refusal(model_path, out, registered, die, view, reviews, ok, ng, defect_type)
    if refusal is not None:
        raise fail(refusal[0], **refusal[1])
    assert (die is None) == (view is None)
    if reviews:
        assert die is not None and view is not None
        _update_from_reviews(die, view, config, fail)
        return
    good = _confirmed(ok, None, fail)
    defects = _confirmed(ng, defect_type, fail)
    both = {p.digest for p in good} & {p.digest for p in defects}
    if both:
        raise fail("vupdate.conflict", n=len(both))
    if model_path is not None and out is not None:
        _update_folder(model_path, out, good, defects, fail)
        return
    assert die is not None and view is not None
    _update_registered(die, view, good, defects, activate, config, fail)


def _update_refusal(
    model_path: Path | None,
    out: Path | None,
    registered: bool,
    die: str | None,
    view: str | None,
    reviews: bool,
    ok: Path | None,
    ng: Path | None,
    defect_type: str,
) -> tuple[str, dict[str, Any]] | None:
    """Why `vision update`'s arguments do not make one clear request, if they do not."""
    if (model_path is not None) == registered or (registered and (die is None or view is None)):
        return "vupdate.where", {}
    if reviews and (ok is not None or ng is not None):
        return "vupdate.reviews_and_dirs", {}
    if (reviews and not registered) or (not reviews and ok is None and ng is None):
        return "vupdate.nothing", {}
    if not 1 <= len(defect_type) <= DEFECT_TYPE_LENGTH:
        return "vupdate.defect_type", {"n": len(defect_type)}
    if registered and out is not None:
        return "vupdate.out_with_die", {}
    if model_path is not None and out is None:
        return "vupdate.out_needed", {}
    if model_path is not None and out is not None and out.exists():
        return "vupdate.out_exists", {"path": out}
    return None


if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from castline.vision.model import InspectionModel
    from castline.vision.update import ReviewedPhoto

    Fail = Callable[..., typer.Exit]


def _confirmed(folder: Path | None, defect_type: str | None, fail: Fail) -> list[ReviewedPhoto]:
    """The photos of a folder, each once (by content), as confirmed photos."""
    import hashlib

    from castline.vision.images import decode_image
    from castline.vision.update import ReviewedPhoto

    if folder is None:
        return []
    photos: dict[str, ReviewedPhoto] = {}
    for path in _photos(folder):
        data = path.read_bytes()
        try:
            image = decode_image(data)
        except ValueError as exc:
            detail = str(exc).split(":")[0]  # the decoder's own words add nothing
            raise fail("vupdate.unreadable", path=path, detail=detail) from None
        digest = hashlib.sha256(data).hexdigest()
        photos.setdefault(digest, ReviewedPhoto(image, digest, path.name, None, "", defect_type))
    return list(photos.values())


def _need_head_data(path: Path, defects: Sequence[ReviewedPhoto], fail: Fail) -> None:
    from castline.vision.head import HEAD_DATA_FILE

    if defects and not (path / HEAD_DATA_FILE).is_file():
        raise fail("vupdate.no_head_data", path=path)


def _update_folder(
    source: Path,
    out: Path,
    good: list[ReviewedPhoto],
    defects: list[ReviewedPhoto],
    fail: Fail,
) -> None:
    from castline.vision.model import InspectionModel, ModelError
    from castline.vision.update import UpdateError, update_model

    try:
        InspectionModel.load(source)  # a clear word on a missing or foreign model first
        _need_head_data(source, defects, fail)
        model = update_model(source, out, good, defects)
    except (ModelError, UpdateError) as exc:
        raise fail("vupdate.failed", detail=exc) from None
    _say_made(model, out)


def _update_registered(
    die: str,
    view: str,
    good: list[ReviewedPhoto],
    defects: list[ReviewedPhoto],
    activate: bool,
    config: Path | None,
    fail: Fail,
) -> None:
    from datetime import UTC, datetime

    from castline.cli_text import say
    from castline.vision.model import ModelError
    from castline.vision.review_learning import reviewed_version
    from castline.vision.update import UpdateError, update_model

    registry = _registry(config)
    active = registry.active(die, view)
    if active is None:
        raise fail("vupdate.no_active", die=die, view=view)
    source = Path(str(active["path"]))
    _need_head_data(source, defects, fail)
    made = f".h{datetime.now(UTC):%Y%m%dT%H%M%S}"  # by hand: named by when
    version, out = reviewed_version(settings_or_exit(config).models_dir, die, view, active, made)
    try:
        model = update_model(source, out, good, defects, version=version)
    except (ModelError, UpdateError) as exc:
        raise fail("vupdate.failed", detail=exc) from None
    _say_made(model, out)
    registry.register(die, view, out.resolve(), model.manifest, activate=activate)
    mark = say("vupdate.active") if activate else ""
    typer.echo(say("vupdate.registered", die=die, view=view, version=version, active=mark))
    if not activate:
        typer.echo(say("vupdate.activate_hint", die=die, view=view, version=version))


def _update_from_reviews(die: str, view: str, config: Path | None, fail: Fail) -> None:
    """One pass of the review loop for a die and view, now (it activates, as the loop)."""
    from castline.cli_text import say
    from castline.store.blobs import BlobStore
    from castline.store.database import open_store
    from castline.vision.model import InspectionModel, ModelError
    from castline.vision.registry import RegistryError
    from castline.vision.review_learning import LearnerConfig, ReviewLearner
    from castline.vision.update import UpdateError

    settings = settings_or_exit(config)
    engine = open_store(settings.db_url)
    blobs = BlobStore(settings.blobs)
    learner = ReviewLearner(engine, blobs, settings.models_dir, LearnerConfig(every_s=0))
    active = learner.registry.active(die, view)
    if active is None:
        raise fail("vupdate.no_active", die=die, view=view)
    try:
        learnt = learner.learn_now(die, view)
    except (ModelError, UpdateError, RegistryError) as exc:
        raise fail("vupdate.failed", detail=exc) from None
    if learnt is None:
        raise fail("vupdate.no_reviews", die=die, view=view, version=active["version"])
    _say_made(InspectionModel.load(learnt.path), learnt.path)
    typer.echo(
        say(
            "vupdate.registered",
            die=die,
            view=view,
            version=learnt.version,
            active=say("vupdate.active"),
        )
    )


def _say_made(model: InspectionModel, out: Path) -> None:
    from castline.cli_text import say
    from castline.vision.head import MIN_DEFECTS

    learnt = model.manifest.get("learnt_from_reviews", {})
    typer.echo(
        say(
            "vupdate.made",
            version=model.version,
            path=out,
            good=learnt.get("good_added", 0),
            defects=learnt.get("defects_added", 0),
        )
    )
    head, done = learnt.get("head"), learnt.get("head_update")
    if done in ("created", "refitted") and head is not None:
        calibration = head["calibration"]
        escape = calibration.get("escape_rate")
        typer.echo(
            say(
                "vupdate.head",
                how=say(f"vupdate.head_{done}"),
                ng=calibration["ng"],
                frr=calibration["false_reject_rate"],
                n=head["good"] + head.get("reviewed_good", 0),
                escape="-" if escape is None else f"{escape:.1%}",
                defects=head["defects"],
            )
        )
    elif done == "pending":
        from castline.vision.head import HeadData

        kept = HeadData.load(out)
        typer.echo(say("vupdate.pending", n=0 if kept is None else len(kept.bad), need=MIN_DEFECTS))
