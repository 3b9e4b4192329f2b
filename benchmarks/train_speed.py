"""Training speed: dermkit against plain Keras on the same model, and LFN's trunks side by side.

    python benchmarks/train_speed.py [--data DIR] [--configs lfn-128,efficientnet_lite0-224]
        [--lfn-variants] [--steps 4] [--rounds 3] [--batch-size 32] [--images 256] [--smoke]

Prints the machine first (CPU model, instruction sets, TensorFlow, oneDNN, threads):
figures from one CPU do not carry over to another, so only the ratios measured here,
side by side in one run, are claims.

For each configuration (model-size, e.g. ``lfn-128``, ``resnet50-224``) two *arms*
train the same freshly built model (same seed, Adamax, batch ``--batch-size``):

- ``keras``: what a plain Keras user writes, ``keras.utils.image_dataset_from_directory``
  on class folders of the same images (decoded and resized every epoch) + ``model.fit``;
- ``dermkit``: dermkit's training stream (decoded-image cache, warm) + ``model.fit``.

The arms alternate (A B, then B A, ...) for ``--rounds`` rounds of ``--steps`` steps, so
other jobs on a shared machine slow both alike. A step's time is the interval between
two batch ends inside one ``fit`` call (the first step of each call, which carries
the pipeline's start-up, is dropped); the median counts. Besides ``fit`` the table
gives each arm's input stream alone (batches per second without a model) and the
training step alone (``fit`` on one batch held in memory, repeated): a stream slower
than the step means training is input-bound. The stream alone is timed from a fresh
iterator over ``max(2 * steps, 8)`` batches, start-up included.

``--lfn-variants`` instead compares LFN-128's trunks, all on dermkit's stream: today's
code (``stem="full"`` with Keras' BatchNormalization), the fused BatchNormalization,
and the ``strided`` and ``resnet`` stems (same parameter counts; see docs/models.md).

Images: ``--images`` HAM10000 images (``--data`` or ``$DERMKIT_HAM10000``), linked into
class folders in a temporary folder that is deleted afterwards; without data, or with
``--smoke``, synthetic images from ``dermkit.demo``. ``--smoke`` is a seconds-long run
of LFN at 64 px that checks that the script works.

``--env-ab VAR=VALUE[,VAR=VALUE]`` measures settings that must be fixed before
TensorFlow starts (``TF_ENABLE_ONEDNN_OPTS=0``, ``TF_NUM_INTRAOP_THREADS=1``, ...): it
runs LFN-128's training step alone (batch in memory) in child processes, alternating
the unchanged environment (A) with the changed one (B), ``--rounds`` children each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _entry import run
from _machine import print_machine

EPOCH_IMAGES = 4945
"""Training images per epoch on the shared set (70 % of the 7,064 HAM10000 images)."""

# --------------------------------------------------------------------------- images


@dataclass
class Images:
    """Class folders of images (for the Keras arm) and the same files as records."""

    folder: Path
    records: list[Any]
    classes: list[str]


def real_images(root: str, count: int, seed: int) -> Images:
    """``count`` HAM10000 images drawn at random, linked into a temporary class tree."""
    import numpy as np

    from dermkit.data.ham10000 import HAM10000

    loaded = HAM10000(root, verify=False).load()
    order = np.random.default_rng(seed).permutation(len(loaded.records))[:count]
    folder = Path(tempfile.mkdtemp(prefix="dermkit-train-speed-"))
    records = []
    for i in order:
        record = loaded.records[int(i)]
        name = loaded.classes.name(record.label)
        (folder / name).mkdir(exist_ok=True)
        link = folder / name / Path(record.path).name
        link.symlink_to(Path(record.path).resolve())
        records.append(record)
    return Images(folder, records, list(loaded.classes.names))


def synthetic_images(size: int, scale: float) -> Images:
    from dermkit.core import Record
    from dermkit.demo import make_demo_dataset

    folder = Path(tempfile.mkdtemp(prefix="dermkit-train-speed-"))
    make_demo_dataset(folder, size=size, scale=scale, seed=0)
    for stray in folder.iterdir():
        if stray.is_file():
            stray.unlink()  # README: image_dataset_from_directory wants class folders only
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    records = [
        Record(path=str(path), label=label, group=path.stem)
        for label, name in enumerate(classes)
        for path in sorted((folder / name).glob("*.png"))
    ]
    return Images(folder, records, classes)


# --------------------------------------------------------------------------- arms


@dataclass
class Arm:
    """One way to train: a model and the stream that feeds it."""

    name: str
    model: Any
    dataset: Any
    fit_steps: list[float] = field(default_factory=list)
    stream_steps: list[float] = field(default_factory=list)
    train_steps: list[float] = field(default_factory=list)


class _StepTimes:
    """A Keras callback recording the interval between batch ends (the first dropped)."""

    @staticmethod
    def make(out: list[float]) -> Any:
        import keras

        class Callback(keras.callbacks.Callback):  # type: ignore[misc]
            last = 0.0
            seen = 0

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                now = time.perf_counter()
                if self.seen:
                    out.append(now - self.last)
                self.seen += 1
                self.last = now

        return Callback()


def build_model(
    name: str,
    size: int,
    classes: int,
    options: dict[str, Any],
    *,
    jit_compile: bool | str = "auto",
    mixed_precision: bool = False,
) -> Any:
    import keras

    from dermkit.models import create_model

    keras.utils.set_random_seed(0)
    previous = keras.mixed_precision.global_policy()
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = create_model(name, classes, input_size=size, **options)
        model.compile(
            optimizer=keras.optimizers.Adamax(1e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=jit_compile,
        )
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model


def keras_dataset(images: Images, size: int, batch: int) -> Any:
    import keras

    dataset = keras.utils.image_dataset_from_directory(
        images.folder,
        image_size=(size, size),
        batch_size=batch,
        shuffle=True,
        seed=0,
        verbose=False,
    )
    return dataset.repeat()


def dermkit_dataset(images: Images, size: int, batch: int, cache_dir: Path) -> Any:
    from dermkit.core import TrainingPlan
    from dermkit.data.cache import ImageCache
    from dermkit.data.images import ImageSettings
    from dermkit.data.loader import ImageLoader
    from dermkit.training.stream import training_stream

    loader = ImageLoader(ImageSettings(size=size), ImageCache(cache_dir))
    loader.load_batch([r.path for r in images.records])  # warm the cache, as epoch 1 does
    plan = TrainingPlan(records=tuple(images.records))
    return training_stream(
        plan, loader, batch_size=batch, seed=0, first_epoch=0, epochs=1000
    ).dataset


def _alternating(arms: Sequence[Arm], rounds: int) -> Iterator[Arm]:
    for r in range(rounds):
        yield from (arms if r % 2 == 0 else list(reversed(arms)))


def _fit_steps(model: Any, dataset: Any, steps: int, out: list[float]) -> None:
    model.fit(
        dataset,
        epochs=1,
        steps_per_epoch=steps + 1,
        verbose=0,
        shuffle=False,
        callbacks=[_StepTimes.make(out)],
    )


def measure(arms: Sequence[Arm], steps: int, rounds: int) -> None:
    """Warm every arm up, then alternate fit, stream-alone and step-alone timings.

    The step alone is ``fit`` on one batch repeated from memory (a stream that costs
    nothing), timed like the real ``fit``.
    """
    import tensorflow as tf

    fixed = {}
    for arm in arms:  # tracing and the first batches are not what an epoch costs
        fixed[arm.name] = tf.data.Dataset.from_tensors(next(iter(arm.dataset))).repeat()
        arm.model.fit(arm.dataset, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
        arm.model.fit(fixed[arm.name], epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
    for arm in _alternating(arms, rounds):
        _fit_steps(arm.model, arm.dataset, steps, arm.fit_steps)
        # the stream alone: a fresh iterator (start-up included) over enough batches
        # that a prefetch buffer filled ahead cannot flatter it
        batches = max(2 * steps, 8)
        start = time.perf_counter()
        iterator = iter(arm.dataset)
        for _ in range(batches):
            next(iterator)
        arm.stream_steps.append((time.perf_counter() - start) / batches)
        _fit_steps(arm.model, fixed[arm.name], max(1, steps // 2), arm.train_steps)


def rate(times: list[float], batch: int) -> float:
    return batch / statistics.median(times) if times else float("nan")


def print_table(title: str, arms: Sequence[Arm], batch: int, reference: str) -> None:
    print(f"## {title}")
    print(
        "| arm | fit img/s | s/epoch | vs " + reference + " | step alone img/s "
        "| stream alone img/s | bound by |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    base = next(a for a in arms if a.name == reference)
    for arm in arms:
        fit, step, stream = (
            rate(arm.fit_steps, batch),
            rate(arm.train_steps, batch),
            rate(arm.stream_steps, batch),
        )
        bound = "input" if stream < step else "compute"
        print(
            f"| {arm.name} | {fit:.1f} | {EPOCH_IMAGES / fit:.0f} | "
            f"{fit / rate(base.fit_steps, batch):.2f}x | {step:.1f} | {stream:.1f} | {bound} |"
        )
    print()
    sys.stdout.flush()


# --------------------------------------------------------------------------- configs

CONFIGS: dict[str, tuple[str, int, dict[str, Any]]] = {
    "lfn-300": ("lfn", 300, {}),
    "lfn-128": ("lfn", 128, {}),
    "efficientnet_lite0-224": (
        "efficientnet_lite0",
        224,
        {"weights": None, "trainable_layers": -1},
    ),
    "resnet50-224": ("resnet50", 224, {"weights": None, "trainable_layers": 4}),
}
"""What the issue asks for. Weights do not change speed, so none are loaded (Lite0 is
fine-tuned whole, ResNet50 trains its last 4 layers as in the study)."""

LFN_VARIANTS: dict[str, dict[str, Any]] = {
    "today (full stem, Keras BN)": {"stem": "full", "fused_batchnorm": False},
    "full stem, fused BN": {"stem": "full"},
    "strided stem, fused BN": {"stem": "strided"},
    "resnet stem, Keras BN": {"stem": "resnet", "fused_batchnorm": False},
    "resnet stem, fused BN": {"stem": "resnet"},
}


def run_config(
    images: Images, key: str, batch: int, steps: int, rounds: int, cache: Path, dense: Any
) -> None:
    name, size, options = CONFIGS[key]
    options = {**options, **({"dense": dense} if dense is not None else {})}
    classes = len(images.classes)
    arms = [
        Arm("keras", build_model(name, size, classes, options), keras_dataset(images, size, batch)),
        Arm(
            "dermkit",
            build_model(name, size, classes, options),
            dermkit_dataset(images, size, batch, cache),
        ),
    ]
    measure(arms, steps, rounds)
    print_table(f"{key}, batch {batch}", arms, batch, "keras")


def run_lfn_variants(
    images: Images, size: int, batch: int, steps: int, rounds: int, cache: Path, dense: Any
) -> None:
    dataset = dermkit_dataset(images, size, batch, cache)
    extra = {"dense": dense} if dense is not None else {}
    arms = [
        Arm(label, build_model("lfn", size, len(images.classes), {**options, **extra}), dataset)
        for label, options in LFN_VARIANTS.items()
    ]
    for arm in arms:
        print(f"# {arm.name}: {arm.model.count_params():,} parameters")
    measure(arms, steps, rounds)
    print_table(f"LFN-{size} trunks, dermkit stream, batch {batch}", arms, batch, arms[0].name)


def child_step_rate(steps: int, batch: int, options: dict[str, Any]) -> float:
    """LFN-128's training step alone, in images/s (what an ``--env-ab`` child prints)."""
    import numpy as np
    import tensorflow as tf

    model = build_model("lfn", 128, 7, options)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch, 128, 128, 3)).astype("float32")
    y = rng.integers(0, 7, batch).astype("int32")
    fixed = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(fixed, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
    times: list[float] = []
    _fit_steps(model, fixed, steps, times)
    return rate(times, batch)


def env_ab(changes: str, steps: int, rounds: int, batch: int, options: list[str]) -> None:
    """Alternate child processes with the environment unchanged (A) and changed (B)."""
    import subprocess

    extra = dict(pair.split("=", 1) for pair in changes.split(","))
    rates: dict[str, list[float]] = {"A": [], "B": []}
    for r in range(rounds):
        for arm in ("A", "B") if r % 2 == 0 else ("B", "A"):
            env = {**os.environ, **(extra if arm == "B" else {})}
            command = [sys.executable, __file__, "--child", "--steps", str(steps)]
            command += ["--batch-size", str(batch)]
            for option in options:
                command += ["--child-option", option]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            value = float(done.stdout.strip().splitlines()[-1].split()[-1])
            rates[arm].append(value)
            print(f"# round {r + 1} {arm}: {value:.1f} img/s", flush=True)
    a, b = statistics.median(rates["A"]), statistics.median(rates["B"])
    print(f"## LFN-128 step alone, batch {batch}, {' '.join(options) or 'default LFN'}")
    print("| environment | img/s (median) | vs A |")
    print("| --- | ---: | ---: |")
    print(f"| A: unchanged | {a:.1f} | 1.00x |")
    print(f"| B: {changes} | {b:.1f} | {b / a:.2f}x |")
    print()


def _option(pair: str) -> tuple[str, Any]:
    key, _, value = pair.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def run_xla_mixed(
    images: Images, size: int, batch: int, steps: int, rounds: int, cache: Path, dense: Any
) -> None:
    """The default LFN with Keras' choice (no XLA on CPU), with XLA, with mixed precision."""
    dataset = dermkit_dataset(images, size, batch, cache)
    options = {"dense": dense} if dense is not None else {}
    classes = len(images.classes)
    arms = [
        Arm("default (jit_compile auto)", build_model("lfn", size, classes, options), dataset),
        Arm(
            "XLA (jit_compile=True)",
            build_model("lfn", size, classes, options, jit_compile=True),
            dataset,
        ),
        Arm(
            "mixed precision float16",
            build_model("lfn", size, classes, options, mixed_precision=True),
            dataset,
        ),
    ]
    measure(arms, steps, rounds)
    print_table(f"LFN-{size} XLA and mixed precision, batch {batch}", arms, batch, arms[0].name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("DERMKIT_HAM10000"))
    parser.add_argument("--configs", default="lfn-128", help=f"any of {', '.join(CONFIGS)}")
    parser.add_argument("--lfn-variants", action="store_true", help="compare LFN-128 trunks")
    parser.add_argument(
        "--xla-mixed", action="store_true", help="LFN-128 with and without XLA / mixed precision"
    )
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--smoke", action="store_true", help="a seconds-long check at 64 px")
    parser.add_argument("--env-ab", metavar="VAR=VALUE[,...]", help="environment A/B (see above)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--child-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="(--env-ab) LFN option, e.g. stem=resnet",
    )
    args = parser.parse_args(argv)
    options = dict(_option(o) for o in args.child_option)
    if args.child:
        print(f"RATE {child_step_rate(args.steps, args.batch_size, options):.3f}")
        return 0
    print_machine()
    if args.env_ab:
        env_ab(args.env_ab, args.steps, args.rounds, args.batch_size, args.child_option)
        return 0
    dense = None
    if args.smoke:
        CONFIGS["lfn-64"] = ("lfn", 64, {})
        configs, size, dense = ["lfn-64"], 64, (16,)
        args.steps, args.rounds, args.batch_size = 2, 2, 4
        images = synthetic_images(64, 0.1)
    else:
        configs, size = [c.strip() for c in args.configs.split(",") if c.strip()], 128
        unknown = [c for c in configs if c not in CONFIGS]
        if unknown:
            parser.error(f"unknown config(s) {', '.join(unknown)}; use {', '.join(CONFIGS)}")
        if args.data:
            images = real_images(args.data, args.images, seed=0)
        else:
            print("# no --data / DERMKIT_HAM10000: synthetic images")
            images = synthetic_images(128, 0.5)
    print(f"# {len(images.records)} images, {len(images.classes)} classes")
    import shutil

    cache = Path(tempfile.mkdtemp(prefix="dermkit-train-speed-cache-"))
    try:
        if args.lfn_variants or args.smoke:
            run_lfn_variants(images, size, args.batch_size, args.steps, args.rounds, cache, dense)
        if args.xla_mixed:
            run_xla_mixed(images, size, args.batch_size, args.steps, args.rounds, cache, dense)
        if not (args.lfn_variants or args.xla_mixed) or args.smoke:
            for key in configs:
                run_config(images, key, args.batch_size, args.steps, args.rounds, cache, dense)
    finally:
        shutil.rmtree(images.folder, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    run(main)
