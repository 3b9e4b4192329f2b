"""``dermkit plugins``: what is registered, of which kind, and by which plugin."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dermkit import plugins


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("plugins", help="list registered datasets, models, balancers...")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    available = plugins.available()
    broken = plugins.broken()
    if args.json:
        print(
            json.dumps(
                {"components": available, "broken": broken, "plugins": plugins.plugin_info()},
                indent=2,
            )
        )
        return 0
    for kind, names in available.items():
        print(f"{kind}:")
        if not names:
            print("  (none)")
        width = max((len(n) for n in names), default=0)
        for name, provider in names.items():
            print(f"  {name:<{width}}  from {provider}")
    if broken:
        print("broken plugins (skipped):")
        for name, error in broken.items():
            print(f"  {name}: {error}")
    return 0
