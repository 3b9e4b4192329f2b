"""``dermkit data inspect``: what a dataset holds, how imbalanced it is, what was skipped.

Run it before training: it reads the dataset exactly as training would (verifying
every image unless ``--no-verify``), so every file that training would skip shows up
here first, with its reason.
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
    """The inspection report as plain JSON types (the ``--json`` output)."""
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
        "skipped": [p.to_json() for p in loaded.problems],
        "found": loaded.found,
    }


def _weight(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render(report: dict[str, Any]) -> str:
    """The inspection report as an aligned text table."""
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
    skipped = report["skipped"]
    lines.append(
        f"found {report['found']:,} inputs: {report['images']:,} images used, "
        f"{len(skipped):,} skipped"
    )
    if skipped:
        lines.append("")
        lines.append("skipped:")
        for item in skipped:
            text = f"  {item['source']}: {item['reason']}"
            lines.append(f"{text} ({item['hint']})" if item["hint"] else text)
    return "\n".join(lines)


def run_inspect(args: argparse.Namespace) -> int:
    from dermkit.data.open import detect_format, open_dataset

    options = _options(args)
    format = args.format
    if format == "auto":
        format, path, options = detect_format(args.path, options)
    else:
        path = args.path
    dataset = open_dataset(path, format, **options)
    loaded = dataset.load(strict=args.strict)
    report = summarize(loaded, format)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0
