"""``dermkit data inspect``: what a dataset holds, how imbalanced it is, what was skipped.

Run it before training: it reads the dataset exactly as training would (verifying
every image unless ``--no-verify``), so every file that training would skip shows up
here first, with its reason, and so do the dataset's warnings (a split that cannot be
grouped by lesion) and the errors that would stop training (no usable image, a class
without images): the report is printed first, then such an error ends the command
with exit status 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from dermkit.cli.options import add_dataset_options, dataset_options
from dermkit.core import LoadedDataset


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("data", help="inspect datasets")
    commands = parser.add_subparsers(dest="data_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: _help(parser))

    inspect = commands.add_parser(
        "inspect",
        help="count images and lesions per class, class weights, skipped files",
        description="Load a dataset as training would and report what it holds.",
    )
    inspect.add_argument("path", metavar="PATH", help="dataset folder or CSV file")
    add_dataset_options(inspect, data_flag=False)
    inspect.add_argument("--json", action="store_true", help="print machine-readable JSON")
    inspect.add_argument(
        "--strict", action="store_true", help="stop with an error at the first bad input"
    )
    inspect.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="do not decode every image (faster; corrupt images go unnoticed)",
    )
    inspect.set_defaults(handler=run_inspect)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {} if args.verify else {"verify": False}
    options.update(dataset_options(args))
    return options


def summarize(loaded: LoadedDataset, format: str) -> dict[str, Any]:
    """The inspection report as plain JSON types (the ``--json`` output).

    ``skipped`` are inputs that should have been usable and are not, ``ignored`` files
    that are not data (hidden, non-image, unlisted); ``found`` counts both and the
    images used. ``errors`` say why training would refuse the dataset.
    """
    from dermkit.data.checks import is_ignored, usability_errors
    from dermkit.data.stats import class_weights, imbalance_ratio

    counts = loaded.counts()
    lesions = loaded.group_counts()
    if sum(counts) > 0:
        balanced = class_weights(counts, "balanced")
        majority = class_weights(counts, "majority")
        ratio: float | None = imbalance_ratio(counts) if 0 not in counts else None
    else:
        balanced = majority = {}
        ratio = None
    return {
        "source": loaded.source,
        "format": format,
        "images": len(loaded.records),
        "lesions": len({r.group for r in loaded.records}),
        "classes": [
            {
                "name": name,
                "images": counts[label],
                "lesions": lesions[label],
                "weight_balanced": balanced.get(label),
                "weight_majority": majority.get(label),
            }
            for label, name in enumerate(loaded.classes)
        ],
        "imbalance_ratio": ratio,
        "skipped": [p.to_json() for p in loaded.problems if not is_ignored(p)],
        "ignored": [p.to_json() for p in loaded.problems if is_ignored(p)],
        "found": loaded.found,
        "warnings": list(loaded.warnings),
        "errors": [error.render() for error in usability_errors(loaded)],
    }


def _weight(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render(report: dict[str, Any], loaded: LoadedDataset) -> str:
    """The inspection report as an aligned text table, repeated problems grouped."""
    from dermkit.data.checks import problem_lines

    lines = [f"dataset: {report['source']} (format {report['format']})", ""]
    header = ("class", "images", "lesions", "weight n/(k·n_c)", "weight n_max/n_c")
    rows = [
        (
            c["name"],
            f"{c['images']:,}",
            f"{c['lesions']:,}",
            _weight(c["weight_balanced"]),
            _weight(c["weight_majority"]),
        )
        for c in report["classes"]
    ]
    rows.append(("total", f"{report['images']:,}", f"{report['lesions']:,}", "", ""))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for index, row in enumerate([header, *rows]):
        if index == len(rows):  # before the total line
            lines.append("  ".join("-" * w for w in widths))
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    ratio = report["imbalance_ratio"]
    if ratio is None:
        empty = [c["name"] for c in report["classes"] if c["images"] == 0]
        lines.append(f"imbalance ratio: undefined (no images of {', '.join(empty)})")
    else:
        lines.append(f"imbalance ratio (largest / smallest class): {ratio:.2f}")
    skipped, ignored = report["skipped"], report["ignored"]
    count_line = (
        f"found {report['found']:,} inputs: {report['images']:,} images used, "
        f"{len(skipped):,} skipped"
    )
    lines.append(count_line + (f", {len(ignored):,} ignored" if ignored else ""))
    sections = (
        ("skipped:", problem_lines(loaded.problems, ignored=False, listed_in=JSON_LISTING)),
        (
            "ignored (not image data):",
            problem_lines(loaded.problems, ignored=True, listed_in=JSON_LISTING),
        ),
        ("warnings:", list(report["warnings"])),
    )
    for title, items in sections:
        if items:
            lines.extend(["", title, *(f"  {item}" for item in items)])
    return "\n".join(lines)


JSON_LISTING = "the --json output"
"""Where a grouped line says the full list is."""


def run_inspect(args: argparse.Namespace) -> int:
    from dermkit.data.open import detect_format, open_dataset

    options = _options(args)
    format = args.format
    if format == "auto":
        format, path, options = detect_format(args.path, options)
    else:
        path = args.path
    from dermkit.data.checks import require_usable

    dataset = open_dataset(path, format, **options)
    loaded = dataset.load(strict=args.strict)
    report = summarize(loaded, format)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report, loaded))
    require_usable(loaded)  # after the report, which shows what was skipped and why
    return 0
