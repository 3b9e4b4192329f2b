"""How a benchmark script is started: a user's mistake ends in one line, not a traceback.

Benchmarks read datasets, run folders and weights that a user names; a wrong path or a
damaged file raises a :class:`dermkit.errors.DermkitError` that already says which
file and what to do, so it is printed as ``dermkit`` itself prints it (exit code 2).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn


def run(main: Callable[[], int]) -> NoReturn:
    from dermkit.errors import DermkitError

    try:
        code = main()
    except DermkitError as error:
        print(f"dermkit: error: {error}", file=sys.stderr)
        code = 2
    raise SystemExit(code)
