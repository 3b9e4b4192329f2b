"""Prediction speed: Keras ``predict`` against ``dermkit predict`` and exported models.

    python benchmarks/predict_speed.py --run RUN [--images 256] [--rounds 3] [--latency 60]
    python benchmarks/predict_speed.py --model lfn --size 128 [--model-option stem=resnet]
    python benchmarks/predict_speed.py --smoke
    python benchmarks/predict_speed.py --run RUN --part val --int8-percentile 99.99 --rounds 1

Prints the machine first (``_machine.py``), then one table: batch throughput
(images/s at ``--batch-size``), single-image latency (p50/p95 over ``--latency``
calls) and, for every export, top-1 agreement with the Keras model and the largest
probability difference, on the run's test images (``--part val`` for choosing export
settings). The arms:

- ``keras predict``: ``model.predict`` on the images already decoded (latency:
  ``model.predict`` on one image, as a user would call it);
- ``dermkit predict``: ``LoadedRun.predict`` from the image files, through the decoded
  image cache (warm) and the ``tf.data`` pipeline, i.e. what ``dermkit predict`` does;
- ``tflite``, ``tflite float16``, ``tflite int8`` (calibrated on the run's training
  images; ``--int8-percentile P`` adds one with percentile activation ranges per P)
  and, when tf2onnx and onnxruntime are installed, ``onnx``: the exports,
  opened with :func:`dermkit.export.open_exported`, on the decoded images.

Arms alternate (A B C ..., then in reverse) for ``--rounds`` rounds, so other jobs on
a shared machine slow all alike; medians and percentiles pool the rounds. With
``--run`` the model is the trained run's; with ``--model`` a run is first trained for
one epoch on ``--train-images`` HAM10000 images (``--data`` or ``$DERMKIT_HAM10000``)
in a temporary folder: its speed is the model's, but agreement figures of an almost
untrained model (near-uniform probabilities) understate what a trained one gets.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _entry import run
from _machine import print_machine


@dataclass
class Arm:
    name: str
    batch: Callable[[], np.ndarray]
    single: Callable[[int], Any]
    probabilities: np.ndarray | None = None
    batch_times: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


def train_tiny_run(args: argparse.Namespace, out: Path) -> Path:
    from dermkit.config import build_component
    from dermkit.data.ham10000 import HAM10000
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.evaluation.evaluator import StandardEvaluator
    from dermkit.experiment import Experiment
    from dermkit.training.config import Training

    options: dict[str, Any] = {"name": args.model}
    for pair in args.model_option:
        key, _, value = pair.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    if args.smoke or not args.data:
        from dermkit.data.folder import ImageFolder
        from dermkit.demo import make_demo_dataset

        data: Any = ImageFolder(make_demo_dataset(out / "data", size=args.size, scale=0.15))
    else:
        data = HAM10000(args.data, verify=False)
    Experiment(
        data=data,
        split=GroupedStratifiedSplit(val=0.15, test=0.35, seed=0),
        model=build_component("models", options),
        training=Training(epochs=1, batch_size=16, verbose=0),
        evaluator=StandardEvaluator(n_boot=10),
        image_size=args.size,
        limit=None if args.smoke or not args.data else args.train_images,
        cache_dir=str(out / "cache"),
    ).run(out / "run")
    return out / "run"


def make_arms(
    run: Any,
    paths: list[Any],
    images: np.ndarray,
    workdir: Path,
    batch: int,
    percentiles: Sequence[float] = (),
) -> list[Arm]:
    from dermkit.export import export_run, open_exported

    model = run.model
    arms = [
        Arm(
            "keras predict",
            lambda: np.asarray(model.predict(images, batch_size=batch, verbose=0)),
            lambda i: model.predict(images[i : i + 1], verbose=0),
        ),
        Arm(
            "dermkit predict",
            lambda: run.predict(paths, batch_size=batch),
            lambda i: run.predict(paths[i : i + 1]),
        ),
    ]
    exports: list[tuple[str, str, str | None, float | None]] = [
        ("tflite", "tflite", None, None),
        ("tflite float16", "tflite", "float16", None),
        ("tflite int8", "tflite", "int8", None),
    ]
    exports += [(f"tflite int8 p{p:g}", "tflite", "int8", p) for p in percentiles]
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401

        exports.append(("onnx", "onnx", None, None))
    except ImportError:
        print("# onnx: tf2onnx/onnxruntime not installed, not measured")
    for name, format, quantize, percentile in exports:
        suffix = f"-{quantize}" if quantize else ""
        suffix += f"-p{percentile:g}" if percentile is not None else ""
        out = workdir / f"model{suffix}.{format}"
        export_run(
            run,
            format,  # type: ignore[arg-type]
            quantize=quantize,  # type: ignore[arg-type]
            out=out,
            check_images=0,
            activation_percentile=percentile,
        )
        exported = open_exported(out)
        arms.append(
            Arm(
                name,
                lambda e=exported: e.predict(images, batch_size=batch),
                lambda i, e=exported: e.predict_on_batch(images[i : i + 1]),
            )
        )
    return arms


def measure(arms: Sequence[Arm], rounds: int, latency: int, count: int) -> None:
    for arm in arms:  # warm-up: tracing, allocation
        arm.probabilities = np.asarray(arm.batch(), dtype=np.float64)
        arm.single(0)
    per_round = max(1, latency // rounds)
    for r in range(rounds):
        for arm in arms if r % 2 == 0 else list(reversed(arms)):
            start = time.perf_counter()
            arm.batch()
            arm.batch_times.append(time.perf_counter() - start)
            for k in range(per_round):
                start = time.perf_counter()
                arm.single((r * per_round + k) % count)
                arm.latencies.append(time.perf_counter() - start)


def print_table(arms: Sequence[Arm], count: int, batch: int) -> None:
    reference = arms[0]
    assert reference.probabilities is not None
    base = count / statistics.median(reference.batch_times)
    print(f"## {count} images, batch {batch}")
    print(
        "| arm | batch img/s | vs keras predict | p50 ms | p95 ms "
        "| top-1 agreement | max abs diff |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for arm in arms:
        assert arm.probabilities is not None
        speed = count / statistics.median(arm.batch_times)
        p50, p95 = np.percentile(np.asarray(arm.latencies) * 1000, [50, 95])
        same = np.mean(arm.probabilities.argmax(1) == reference.probabilities.argmax(1))
        diff = np.max(np.abs(arm.probabilities - reference.probabilities))
        print(
            f"| {arm.name} | {speed:.1f} | {speed / base:.2f}x | {p50:.1f} | {p95:.1f} | "
            f"{same:.1%} | {diff:.2g} |"
        )
    print()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained run folder (else one is trained for 1 epoch)")
    parser.add_argument("--data", default=os.environ.get("DERMKIT_HAM10000"))
    parser.add_argument("--model", default="lfn")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--train-images", type=int, default=400)
    parser.add_argument("--images", type=int, default=256, help="images of --part to predict")
    parser.add_argument(
        "--part",
        choices=("val", "test"),
        default="test",
        help="the run's part to predict: choose export settings on val, report test",
    )
    parser.add_argument(
        "--int8-percentile",
        type=float,
        action="append",
        default=[],
        metavar="P",
        help="also export int8 with activation ranges at the P-th percentile (repeatable)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=int, default=60, help="single-image calls per arm")
    parser.add_argument("--smoke", action="store_true", help="a quick check at 64 px")
    args = parser.parse_args(argv)
    if args.smoke:
        args.size, args.images, args.rounds, args.latency = 64, 16, 2, 4
        args.model_option = [*args.model_option, "dense=16"]
    print_machine()
    from dermkit.export.calibration import run_part
    from dermkit.runs import load_run

    workdir = Path(tempfile.mkdtemp(prefix="dermkit-predict-speed-"))
    try:
        run_dir = Path(args.run) if args.run else train_tiny_run(args, workdir)
        run = load_run(run_dir)
        records = list(run_part(Path(run.run_dir), args.part))[: args.images]
        if not records:
            parser.error(f"the run has no {args.part} images")
        paths = [r.path for r in records]
        images = run.images(paths).astype(np.float32)  # also warms the cache
        what = run_dir if args.run else f"{args.model} trained 1 epoch (speed only)"
        print(f"# model: {what}, {run.settings.size} px, {len(images)} {args.part} images")
        arms = make_arms(run, paths, images, workdir, args.batch_size, args.int8_percentile)
        measure(arms, args.rounds, args.latency, len(images))
        print_table(arms, len(images), args.batch_size)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    run(main)
