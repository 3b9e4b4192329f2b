"""Decode+resize throughput with and without the on-disk image cache.

    python benchmarks/pipeline.py [--data DIR] [--limit N] [--size 300] [--workers N] [--tf]

Reads the HAM10000 working set (``--data`` or ``$DERMKIT_HAM10000``) and times three
passes over the same images with the same thread pool, in images per second:

1. decode + resize, no cache (what every epoch costs without the cache);
2. decode + resize + cache write (the first epoch of the first run);
3. cached read (every later epoch and run).

The source files are read once beforehand, so the first pass is not charged for a
cold disk, and the written cache is flushed (``os.sync``) before it is read, as it
would be by any later run. Each pass runs ``--repeat`` times with a fresh temporary
cache folder (deleted afterwards) and the best time counts, as ``timeit`` does, since
other jobs on the machine only ever slow a pass down. ``--tf`` also times the same
passes through ``dermkit.data.pipeline.image_dataset``. The exit status is 1 if the
cached read is less than ``--min-speedup`` times faster than pass 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _entry import run
from _machine import print_machine

from dermkit.data.cache import ImageCache
from dermkit.data.ham10000 import HAM10000
from dermkit.data.images import ImageSettings
from dermkit.data.loader import ImageLoader
from dermkit.data.verify import default_workers

CHUNK = 32
"""Paths per thread-pool task, as the tf.data pipeline does: per-task overhead would
otherwise rival a cached read."""


def _threaded(loader: ImageLoader, paths: Sequence[Path], workers: int) -> float:
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for batch in pool.map(loader.load_batch, chunks):
            assert batch.shape[1:] == loader.settings.shape
    return time.perf_counter() - start


def _tf_pass(loader: ImageLoader, paths: Sequence[Path], workers: int) -> float:
    from dermkit.data.pipeline import image_dataset

    dataset = image_dataset(paths, loader, num_parallel_calls=workers).batch(64)
    start = time.perf_counter()
    for _ in dataset:
        pass
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("DERMKIT_HAM10000"))
    parser.add_argument(
        "--limit", type=int, default=0, help="use only the first N images (default: all)"
    )
    parser.add_argument("--size", type=int, default=300, help="output side (default 300, LFN's)")
    parser.add_argument("--resize-mode", default="squash")
    parser.add_argument("--interpolation", default="lanczos4")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--tf", action="store_true", help="also time the tf.data pipeline")
    parser.add_argument("--min-speedup", type=float, default=10.0)
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per pass; the best counts (default 2)"
    )
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("give --data or set DERMKIT_HAM10000")
    print_machine()

    records = HAM10000(args.data, verify=False).load().records
    paths = [r.path for r in records][: args.limit or None]
    settings = ImageSettings(
        size=args.size, resize_mode=args.resize_mode, interpolation=args.interpolation
    )
    for path in paths:  # warm the page cache so pass 1 is not charged for the disk
        path.read_bytes()

    print(
        f"{len(paths):,} images from {args.data}; {settings.size}×{settings.size} "
        f"{settings.resize_mode}/{settings.interpolation}; {args.workers} threads; "
        f"{len(os.sched_getaffinity(0))} CPU cores"
    )
    runners: list[tuple[str, Callable[[ImageLoader, Sequence[Path], int], float]]] = [
        ("threads", _threaded)
    ]
    if args.tf:
        runners.append(("tf.data", _tf_pass))

    rows: list[tuple[str, str, float, float]] = []
    ok = True
    for runner_name, time_pass in runners:
        best = [float("inf")] * 3
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="dermkit-bench-cache-") as folder:
                uncached = time_pass(ImageLoader(settings, None), paths, args.workers)
                cold = ImageLoader(settings, ImageCache(folder))
                cold_time = time_pass(cold, paths, args.workers)
                if hasattr(os, "sync"):
                    os.sync()  # time reads of a settled cache, not against its writeback
                warm = ImageLoader(settings, ImageCache(folder))
                warm_time = time_pass(warm, paths, args.workers)
                assert cold.decodes == len(paths)
                assert warm.hits == len(paths) and warm.decodes == 0
            best = [min(b, t) for b, t in zip(best, (uncached, cold_time, warm_time), strict=True)]
        uncached, cold_time, warm_time = best
        rows.append((runner_name, "decode+resize, no cache", uncached, 1.0))
        rows.append((runner_name, "decode+resize+cache write", cold_time, uncached / cold_time))
        rows.append((runner_name, "cached read", warm_time, uncached / warm_time))
        ok = ok and uncached / warm_time >= args.min_speedup

    header = ("via", "pass", "seconds", "images/s", "speed-up")
    table: list[tuple[Any, ...]] = [
        (via, name, f"{t:.3f}", f"{len(paths) / t:,.0f}", f"{s:.1f}×") for via, name, t, s in rows
    ]
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        cells = [str(row[0]).ljust(widths[0]), str(row[1]).ljust(widths[1])]
        cells += [str(c).rjust(w) for c, w in zip(row[2:], widths[2:], strict=True)]
        print("  ".join(cells))
    if not ok:
        print(f"cached read is less than {args.min_speedup:g}× faster", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run(main)
