"""Two processes filling the same decoded-image cache at once: both get the right pixels,
the cache ends with one whole entry per image, and a third process reads only hits."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from .faults import cli_env

FILL = """
import hashlib, json, sys
from pathlib import Path
from dermkit.data.cache import ImageCache
from dermkit.data.images import ImageSettings
from dermkit.data.loader import ImageLoader

root, data, order = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
paths = sorted(data.rglob("*.png"))
if order == "reversed":
    paths.reverse()
loader = ImageLoader(ImageSettings(size=48), ImageCache(root))
digests = {str(p): hashlib.sha256(loader(p).tobytes()).hexdigest() for p in paths}
print(json.dumps({"digests": digests, "hits": loader.hits, "decodes": loader.decodes}))
"""


def _fill(root: Path, data: Path, order: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", FILL, str(root), str(data), order],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_fill_one_cache_safely(tiny_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    # the same images in opposite orders, so the two meet in the middle of the list
    racing = [_fill(root, tiny_data, order) for order in ("forward", "reversed")]
    results = []
    for process in racing:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
        results.append(json.loads(out))
    assert results[0]["digests"] == results[1]["digests"]
    images = sorted(tiny_data.rglob("*.png"))
    assert len(list(root.rglob("*.npy"))) == len(images)
    assert not list(root.rglob(".tmp-*"))

    after = _fill(root, tiny_data, "forward")
    out, err = after.communicate(timeout=120)
    assert after.returncode == 0, err[-2000:]
    third = json.loads(out)
    assert third["hits"] == len(images) and third["decodes"] == 0
    assert third["digests"] == results[0]["digests"]
    # and the pixels are those of a fresh decode, not of a torn write
    from dermkit.data.images import ImageSettings, load_image

    for path in images[:5]:
        fresh = hashlib.sha256(load_image(path, ImageSettings(size=48)).tobytes()).hexdigest()
        assert third["digests"][str(path)] == fresh
