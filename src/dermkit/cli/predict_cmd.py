"""``dermkit predict``: class probabilities for new images from a finished run's model.

Images are decoded here, one by one in a few threads, rather than in a ``tf.data``
stream: a stream stops at the first unreadable file, while a user pointing this
command at a folder of clinic photos wants every readable one predicted and the rest
named. The readable images of each chunk are then predicted as one batch. The
Grad-CAM figures show the image at its own size beside the overlay, labelled with the
predicted class and its probability (see :mod:`dermkit.evaluation.gradcam_figure`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import numpy as np

from dermkit.cli.options import add_prediction_options, add_trust_option
from dermkit.core import Problem
from dermkit.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from dermkit.data.loader import ImageLoader
    from dermkit.runs import LoadedRun

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
"""What a folder given on the command line is searched for (recursively)."""

EXIT_OK = 0
EXIT_NOTHING_PREDICTED = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="class probabilities for images, from a finished run's model",
        description=(
            "Predict the class probabilities of images (folders are searched recursively "
            f"for {' '.join(IMAGE_SUFFIXES)} files). Unreadable images are reported and skipped."
        ),
    )
    parser.add_argument(
        "run",
        metavar="RUN",
        help="run folder written by `dermkit train`, or a model written by `dermkit export`",
    )
    parser.add_argument("images", metavar="IMAGE_OR_DIR", nargs="+", help="images or folders")
    parser.add_argument("--top-k", type=int, default=3, help="classes shown per image (default 3)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a JSON list, one item per image")
    output.add_argument("--csv", action="store_true", help="print CSV, a column per class")
    parser.add_argument(
        "--gradcam",
        metavar="OUT_DIR",
        help="write, per image, the original beside its Grad-CAM overlay of the top class, "
        "labelled with that class and its probability",
    )
    add_prediction_options(parser)
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    add_trust_option(parser)
    parser.set_defaults(handler=run)


@attrs.frozen
class Prediction:
    image: str
    probabilities: np.ndarray = attrs.field(eq=False)
    gradcam: str | None = None


@attrs.frozen
class Failure:
    image: str
    error: str


Outcome = Prediction | Failure
T = TypeVar("T")


def _walk_images(folder: Path) -> list[Path]:
    found: list[Path] = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(current) / name)
    return found


def expand_inputs(arguments: Sequence[str]) -> list[Path | Problem]:
    """Every image to predict, in the order given; folders expanded recursively.

    A path that does not exist, or a folder without images, becomes a
    :class:`Problem` in its place. A file named explicitly is tried whatever its
    suffix. Repeats of the same file are predicted once.
    """
    out: list[Path | Problem] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(path)

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            images = _walk_images(path)
            if not images:
                out.append(
                    Problem(
                        str(path),
                        "no image files in this folder",
                        f"images are found by their suffix: {', '.join(IMAGE_SUFFIXES)}",
                    )
                )
            for image in images:
                add(image)
        elif path.exists():
            add(path)
        else:
            out.append(Problem(str(path), "no such file or folder", "check the path"))
    return out


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _load(loader: ImageLoader, paths: list[Path]) -> list[np.ndarray | DataError]:
    def one(path: Path) -> np.ndarray | DataError:
        try:
            return loader(path)
        except DataError as error:
            return error

    workers = max(1, min(8, os.cpu_count() or 1, len(paths)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, paths))


class GradcamNamer:
    """``<stem>_gradcam.png``, with ``-2``, ``-3``... after the stem when stems repeat."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.used: set[str] = set()

    def __call__(self, image: Path) -> Path:
        stem = image.stem or "image"
        name = f"{stem}_gradcam.png"
        number = 1
        while name.lower() in self.used:
            number += 1
            name = f"{stem}-{number}_gradcam.png"
        self.used.add(name.lower())
        return self.folder / name


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG, atomically (no half-written file on a crash)."""
    import cv2

    from dermkit import atomic

    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - PNG encoding of a uint8 RGB array does not fail
        raise DataError("OpenCV could not encode the overlay as PNG", where=str(path))
    data = encoded.tobytes()

    def fill(tmp: Path) -> None:
        tmp.write_bytes(data)

    atomic.write_with(path, fill, suffix=".png")


def predict(run: LoadedRun, args: argparse.Namespace) -> list[Outcome]:
    """Predict every input, chunk by chunk; bad inputs become :class:`Failure` items."""
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.calibrated:
        run.scaler()  # fail before any work when the run has no temperature
    namer: GradcamNamer | None = None
    if args.gradcam:
        run.keras_model()  # an exported model has no gradients to follow: say so first
        folder = Path(args.gradcam)
        if folder.exists() and not folder.is_dir():
            raise ConfigError("--gradcam must name a folder", where=str(folder))
        folder.mkdir(parents=True, exist_ok=True)
        namer = GradcamNamer(folder)
    loader = run.loader()
    inputs = expand_inputs(args.images)
    outcomes: dict[int, Outcome] = {}
    paths: list[Path] = []
    positions: list[int] = []
    for position, item in enumerate(inputs):
        if isinstance(item, Problem):
            failure = Failure(item.source, _reason(item))
            outcomes[position] = failure
            _report(failure)
        else:
            paths.append(item)
            positions.append(position)
    for chunk_paths, chunk_positions in zip(
        _chunks(paths, args.batch_size), _chunks(positions, args.batch_size), strict=True
    ):
        good: list[int] = []
        arrays: list[np.ndarray] = []
        for i, value in enumerate(_load(loader, chunk_paths)):
            if isinstance(value, DataError):
                failure = Failure(str(chunk_paths[i]), _error_text(value))
                outcomes[chunk_positions[i]] = failure
                _report(failure)
            else:
                good.append(i)
                arrays.append(value)
        if not good:
            continue
        images = np.stack(arrays)
        probabilities = run.predict_images(
            images, tta=args.tta, calibrated=args.calibrated, batch_size=args.batch_size
        )
        overlays: list[str | None] = [None] * len(good)
        if namer is not None:
            overlays = _gradcam(run, images, probabilities, [chunk_paths[i] for i in good], namer)
        for row, i in enumerate(good):
            outcomes[chunk_positions[i]] = Prediction(
                str(chunk_paths[i]), probabilities[row], overlays[row]
            )
    return [outcomes[i] for i in sorted(outcomes)]


def _gradcam(
    run: LoadedRun,
    images: np.ndarray,
    probabilities: np.ndarray,
    paths: list[Path],
    namer: GradcamNamer,
) -> list[str | None]:
    """One figure per image: the original beside its overlay, at the original size.

    The heatmap is computed on the pixels the model saw, then mapped back through the
    run's resize mode onto the image as it is on disk (decoded a second time here).
    """
    from dermkit.data.images import read_image
    from dermkit.evaluation.gradcam import gradcam
    from dermkit.evaluation.gradcam_figure import caption, gradcam_figure

    top = probabilities.argmax(axis=1)
    heatmaps = gradcam(run.keras_model(), images, class_index=top.tolist())
    written: list[str | None] = []
    for row, (heatmap, path) in enumerate(zip(heatmaps, paths, strict=True)):
        original = read_image(path, run.settings.max_pixels)
        label = caption(run.classes.name(int(top[row])), float(probabilities[row, top[row]]))
        figure = gradcam_figure(original, heatmap, label, resize_mode=run.settings.resize_mode)
        target = namer(path)
        write_png(target, figure)
        written.append(str(target))
    return written


def _reason(problem: Problem) -> str:
    return f"{problem.reason} ({problem.hint})" if problem.hint else problem.reason


def _error_text(error: DataError) -> str:
    return f"{error.message}. {error.hint}" if error.hint else error.message


def _report(failure: Failure) -> None:
    print(f"dermkit: skipped {failure.image}: {failure.error}", file=sys.stderr)


def top_k(probabilities: np.ndarray, names: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` most probable classes, most probable first (ties: class order)."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(names[i], float(probabilities[i])) for i in order]


def render_json(outcomes: list[Outcome], names: Sequence[str], k: int) -> str:
    items: list[dict[str, Any]] = []
    for outcome in outcomes:
        if isinstance(outcome, Failure):
            items.append({"image": outcome.image, "error": outcome.error})
            continue
        item: dict[str, Any] = {
            "image": outcome.image,
            "probabilities": {
                name: float(p) for name, p in zip(names, outcome.probabilities, strict=True)
            },
            "top_k": [
                {"class": name, "probability": p}
                for name, p in top_k(outcome.probabilities, names, k)
            ],
        }
        if outcome.gradcam is not None:
            item["gradcam"] = outcome.gradcam
        items.append(item)
    return json.dumps(items, indent=2, ensure_ascii=False)


def render_csv(outcomes: list[Outcome], names: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", *names])
    for outcome in outcomes:
        if isinstance(outcome, Prediction):
            writer.writerow([outcome.image, *(f"{float(p):.6f}" for p in outcome.probabilities)])
    return buffer.getvalue().rstrip("\n")


def render_table(outcomes: list[Outcome], names: Sequence[str], k: int) -> str:
    predictions = [o for o in outcomes if isinstance(o, Prediction)]
    shown = min(k, len(names))
    header = ["image", *(f"top {i + 1}" for i in range(shown))]
    rows = [
        [o.image, *(f"{name} {p:.3f}" for name, p in top_k(o.probabilities, names, shown))]
        for o in predictions
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from dermkit.runs import load_run

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {args.top_k}")
    loaded_run = load_run(args.run, trust_code=args.trust_model_code)
    outcomes = predict(loaded_run, args)
    names = list(loaded_run.classes.names)
    if args.json:
        print(render_json(outcomes, names, args.top_k))
    elif args.csv:
        print(render_csv(outcomes, names))
    elif any(isinstance(o, Prediction) for o in outcomes):
        print(render_table(outcomes, names, args.top_k))
    predicted = sum(isinstance(o, Prediction) for o in outcomes)
    failed = len(outcomes) - predicted
    if predicted == 0:
        print("dermkit: error: no image could be predicted", file=sys.stderr)
        return EXIT_NOTHING_PREDICTED
    if failed:
        print(f"dermkit: predicted {predicted} image(s), skipped {failed}", file=sys.stderr)
    if args.gradcam:
        print(f"dermkit: Grad-CAM overlays in {args.gradcam}", file=sys.stderr)
    return EXIT_OK
