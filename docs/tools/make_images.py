"""Draw the pictures in docs/images/ from a ``dermkit demo`` run: report plots, Grad-CAM,
sample images.

Everything comes from the demo's **synthetic** drawings, never from HAM10000 or any
other real images (nothing derived from them may be committed). Run it from the
repository root after changing the plots or the demo, and commit the result::

    python docs/tools/make_images.py            # about two minutes on two CPU cores

It runs ``dermkit demo`` (10 epochs at 64 pixels, seeded) in a temporary folder,
copies the test report's figures, asks ``dermkit predict --gradcam`` for the Grad-CAM
overlays of one test image per class, and draws a grid of sample images per class.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

IMAGES = Path(__file__).resolve().parent.parent / "images"
REPORT_FIGURES = (
    "training_curves.png",
    "confusion_matrix.png",
    "roc_curves.png",
    "per_class_recall.png",
)


def _figure(columns: int, rows: int, cell: float = 1.3) -> tuple[Any, Any]:
    """A figure of ``rows`` x ``columns`` picture cells, small enough to keep the PNG light."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(columns * cell, rows * cell + 0.3), dpi=90)
    FigureCanvasAgg(figure)
    return figure, figure.subplots(rows, columns, squeeze=False)


def sample_grid(data: Path, out: Path, per_class: int = 5) -> None:
    """A row of the first ``per_class`` images of every class folder, labelled."""
    import matplotlib.image

    classes = sorted(p for p in data.iterdir() if p.is_dir())
    figure, axes = _figure(per_class, len(classes))
    for row, folder in enumerate(classes):
        for column, path in enumerate(sorted(folder.glob("*.png"))[:per_class]):
            ax = axes[row][column]
            ax.imshow(matplotlib.image.imread(path), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if column == 0:
                ax.set_ylabel(folder.name.removeprefix("synthetic-"), fontsize=8)
    figure.suptitle("dermkit demo data: synthetic drawings, not medical images", fontsize=9)
    figure.tight_layout()
    figure.savefig(out)


def gradcam_strip(run: Path, out: Path, work: Path) -> None:
    """One test image per class: the image and its Grad-CAM overlay, side by side."""
    import matplotlib.image

    from dermkit.cli.main import main

    chosen: dict[str, Path] = {}
    with open(run / "split.csv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["part"] == "test":
                chosen.setdefault(row["class"], Path(row["path"]))
    cams = work / "cams"
    images = [chosen[name] for name in sorted(chosen)]
    if main(["predict", str(run), *map(str, images), "--gradcam", str(cams)]) != 0:
        raise SystemExit("dermkit predict failed")
    figure, axes = _figure(len(images), 2, cell=1.5)
    for column, (name, path) in enumerate(zip(sorted(chosen), images, strict=True)):
        overlay = cams / f"{path.stem}_gradcam.png"
        for row, picture in enumerate((path, overlay)):
            ax = axes[row][column]
            ax.imshow(matplotlib.image.imread(picture), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0][column].set_title(name.removeprefix("synthetic-"), fontsize=8)
    axes[0][0].set_ylabel("image", fontsize=8)
    axes[1][0].set_ylabel("Grad-CAM", fontsize=8)
    figure.tight_layout()
    figure.savefig(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="default: docs/images")
    parser.add_argument("--epochs", default="10", help="demo epochs (default 10)")
    args = parser.parse_args(argv)

    from dermkit.cli.main import main as dermkit

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dermkit-docs-images-") as tmp:
        work = Path(tmp)
        run = work / "runs" / "demo"
        if dermkit(["demo", "--out", str(run), "--epochs", args.epochs, "--quiet"]) != 0:
            raise SystemExit("dermkit demo failed")
        for name in REPORT_FIGURES:
            shutil.copyfile(run / "report_test" / name, args.out / f"report-{name}")
        sample_grid(work / "runs" / "demo-synthetic-data", args.out / "demo-samples.png")
        gradcam_strip(run, args.out / "gradcam.png", work)
    print(f"wrote {len(REPORT_FIGURES) + 2} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
