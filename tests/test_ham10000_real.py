"""On the real HAM10000 working set: ``dermkit data inspect`` reports the known counts.

Skipped unless ``DERMKIT_HAM10000`` names the folder (e.g. /work/shared/data/ham10000).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from dermkit.cli.main import main

pytestmark = pytest.mark.ham10000

EXPECTED = {"akiec": 327, "bcc": 442, "bkl": 766, "df": 115, "mel": 753, "nv": 4519, "vasc": 142}
EXPECTED_LESIONS = {
    "akiec": 228,
    "bcc": 310,
    "bkl": 629,
    "df": 73,
    "mel": 558,
    "nv": 4423,
    "vasc": 98,
}


def test_inspect_reports_the_known_counts(ham10000_path: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["data", "inspect", str(ham10000_path), "--json"])
    assert code == 0
    report = json.loads(out.getvalue())
    assert report["format"] == "ham10000"
    assert report["images"] == 7064
    assert report["lesions"] == 6319
    assert {c["name"]: c["images"] for c in report["classes"]} == EXPECTED
    assert {c["name"]: c["lesions"] for c in report["classes"]} == EXPECTED_LESIONS
    assert report["skipped"] == [] and report["found"] == 7064
    nv = next(c for c in report["classes"] if c["name"] == "nv")
    assert nv["weight_majority"] == 1.0
    assert report["imbalance_ratio"] == pytest.approx(4519 / 115)


def test_real_images_decode_to_the_requested_size(ham10000_path: Path) -> None:
    from dermkit.data.ham10000 import HAM10000
    from dermkit.data.images import ImageSettings, load_image

    loaded = HAM10000(ham10000_path, verify=False).load()
    settings = ImageSettings(size=300)
    for record in loaded.records[:5]:
        image = load_image(record.path, settings)
        assert image.shape == (300, 300, 3) and image.dtype.name == "uint8"
    assert all("dx_type" not in r.metadata for r in loaded.records)
