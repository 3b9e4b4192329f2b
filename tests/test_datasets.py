"""The four dataset readers, format auto-detection, config round-trip and ``data inspect``."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from conftest import ImageWriter, write_ham10000
from dermkit.cli.main import main
from dermkit.core import HAM10000_CLASSES, ClassIndex, Dataset
from dermkit.data.csv_manifest import CSVManifest
from dermkit.data.folder import ImageFolder
from dermkit.data.ham10000 import HAM10000
from dermkit.data.isic import ISICGroundTruth
from dermkit.data.open import detect_format, open_dataset
from dermkit.errors import ConfigError, DataError


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


# ----------------------------------------------------------------------------- folder


def test_folder_classes_are_sorted_and_groups_are_stems(
    tmp_path: Path, make_image_folder: Callable[..., Path]
) -> None:
    root = make_image_folder(tmp_path / "d", {"nv": 3, "mel": 2})
    loaded = ImageFolder(root).load()
    assert loaded.classes.names == ("mel", "nv")
    assert loaded.counts() == [2, 3]
    assert loaded.found == 5 and not loaded.problems
    assert loaded.records[0].group == "mel_000"
    assert loaded.records[0].path == root / "mel" / "mel_000.png"


def test_folder_class_order_can_be_fixed(
    tmp_path: Path, make_image_folder: Callable[..., Path]
) -> None:
    root = make_image_folder(tmp_path / "d", {"nv": 1, "mel": 1})
    loaded = ImageFolder(root, classes=["nv", "mel"]).load()
    assert loaded.classes.names == ("nv", "mel")
    assert [r.label for r in loaded.records] == [1, 0]  # mel folder listed first, label 1


def test_folder_group_pattern(tmp_path: Path, write_image: ImageWriter) -> None:
    for name in ("HAM_1_ISIC_1.jpg", "HAM_1_ISIC_2.jpg", "HAM_2_ISIC_3.jpg", "stray.jpg"):
        write_image(tmp_path / "d" / "nv" / name)
    loaded = ImageFolder(tmp_path / "d", group_pattern=r"^(HAM_\d+)_").load()
    assert [r.group for r in loaded.records] == ["HAM_1", "HAM_1", "HAM_2"]
    assert [Path(p.source).name for p in loaded.problems] == ["stray.jpg"]


@pytest.mark.parametrize("pattern", ["(unclosed", "no_group"])
def test_bad_group_pattern_is_a_config_error(pattern: str) -> None:
    with pytest.raises(ConfigError):
        ImageFolder("x", group_pattern=pattern)


# ----------------------------------------------------------------------------- HAM10000


def test_ham10000_reads_labels_groups_and_metadata(tiny_ham10000: Path) -> None:
    loaded = HAM10000(tiny_ham10000).load()
    assert loaded.classes == ClassIndex.ham10000()
    assert loaded.counts() == [4] * 7
    assert loaded.group_counts() == [2] * 7
    first = loaded.records[0]
    assert first.group == "HAM_0000" and first.label == 0
    assert dict(first.metadata) == {
        "image_id": "ISIC_0000",
        "age": 30.0,
        "sex": "male",
        "localization": "back",
    }
    assert all("dx_type" not in r.metadata for r in loaded.records)


def test_ham10000_official_two_part_layout(tmp_path: Path) -> None:
    rows = [
        {"lesion_id": f"HAM_{i}", "image_id": f"ISIC_{i}", "dx": dx, "age": ""}
        for i, dx in enumerate(HAM10000_CLASSES)
    ]
    root = write_ham10000(tmp_path / "h", rows[:4], image_folder="HAM10000_images_part_1")
    write_ham10000(root, rows, image_folder="ham10000_images_part_2")  # Kaggle's lower case
    for row in rows[:4]:
        (root / "ham10000_images_part_2" / f"{row['image_id']}.jpg").unlink()
    loaded = HAM10000(root).load()
    assert len(loaded.records) == 7 and not loaded.problems
    assert {r.path.parent.name for r in loaded.records} == {
        "HAM10000_images_part_1",
        "ham10000_images_part_2",
    }
    assert loaded.records[0].metadata["age"] is None


# ----------------------------------------------------------------------------- CSV


def test_csv_manifest_paths_suffixes_groups_and_metadata(
    tmp_path: Path, write_image: ImageWriter
) -> None:
    write_image(tmp_path / "pics" / "a.jpg")
    write_image(tmp_path / "pics" / "b.png")
    absolute = write_image(tmp_path / "elsewhere" / "c.jpg")
    (tmp_path / "lists").mkdir()
    csv = tmp_path / "lists" / "m.csv"
    csv.write_text(
        f"Image , Label,patient,site\na.jpg,mel,P1,back\nb,nv,P1,arm\n{absolute},nv,P2,leg\n"
    )
    dataset = CSVManifest(
        csv,
        image_column="image",
        label_column="label",
        group_column="patient",
        image_root=tmp_path / "pics",
        metadata_columns=["site"],
    )
    loaded = dataset.load()
    assert not loaded.problems
    assert loaded.classes.names == ("mel", "nv")
    assert [r.path.name for r in loaded.records] == ["a.jpg", "b.png", "c.jpg"]
    assert [r.group for r in loaded.records] == ["P1", "P1", "P2"]
    assert loaded.records[1].metadata == {"site": "arm"}


def test_csv_manifest_paths_default_to_the_csv_folder(
    tmp_path: Path, write_image: ImageWriter
) -> None:
    write_image(tmp_path / "x.jpg")
    (tmp_path / "m.csv").write_text("f,y\nx.jpg,nv\n")
    loaded = CSVManifest(tmp_path / "m.csv", "f", "y").load()
    assert loaded.records[0].group == "x" and loaded.records[0].path == tmp_path / "x.jpg"


# ----------------------------------------------------------------------------- ISIC


def test_isic_columns_map_by_name_whatever_their_order(
    tmp_path: Path, write_image: ImageWriter
) -> None:
    header = ["VASC", "df", "image", "NV", "bkl", "MEL", "AKIEC", "bcc"]
    wanted = ["vasc", "df", "nv", "bkl", "mel", "akiec", "bcc"]
    lines = [",".join(header)]
    for i, dx in enumerate(wanted):
        write_image(tmp_path / "imgs" / f"ISIC_{i}.jpg", seed=i)
        cells = {h: ("1.0" if h.lower() == dx else "0.0") for h in header}
        cells["image"] = f"ISIC_{i}"
        lines.append(",".join(cells[h] for h in header))
    (tmp_path / "gt.csv").write_text("\n".join(lines) + "\n")
    loaded = ISICGroundTruth(tmp_path / "gt.csv", tmp_path / "imgs").load()
    assert loaded.classes == ClassIndex.ham10000()
    assert [loaded.classes.name(r.label) for r in loaded.records] == wanted
    assert [r.group for r in loaded.records] == [f"ISIC_{i}" for i in range(7)]
    assert not loaded.problems


def test_isic_missing_class_column_is_a_hard_error(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "gt.csv").write_text("image,MEL,NV\nISIC_1,1,0\n")
    with pytest.raises(DataError, match="AKIEC, BCC, BKL, DF, VASC"):
        ISICGroundTruth(tmp_path / "gt.csv", tmp_path / "imgs").load()


# ----------------------------------------------------------------------------- open_dataset


def _isic_layout(tmp_path: Path, write_image: ImageWriter) -> Path:
    gt = tmp_path / "ISIC2018_Task3_Validation_GroundTruth"
    gt.mkdir(parents=True)
    write_image(tmp_path / "ISIC2018_Task3_Validation_Input" / "ISIC_1.jpg")
    csv = gt / "ISIC2018_Task3_Validation_GroundTruth.csv"
    csv.write_text("image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\nISIC_1,0,1,0,0,0,0,0\n")
    return csv


def test_open_dataset_detects_each_format(
    tmp_path: Path,
    tiny_ham10000: Path,
    make_image_folder: Callable[..., Path],
    write_image: ImageWriter,
) -> None:
    assert isinstance(open_dataset(tiny_ham10000), HAM10000)
    assert isinstance(open_dataset(tiny_ham10000 / "HAM10000_metadata.csv"), HAM10000)
    folder = make_image_folder(tmp_path / "f", {"a": 1})
    assert isinstance(open_dataset(folder), ImageFolder)
    csv = _isic_layout(tmp_path / "isic", write_image)
    isic = open_dataset(csv)
    assert isinstance(isic, ISICGroundTruth)
    assert Path(isic.image_dir).name == "ISIC2018_Task3_Validation_Input"
    assert isinstance(open_dataset(csv.parent), ISICGroundTruth)
    manifest = tmp_path / "m.csv"
    manifest.write_text("f,y\n")
    dataset = open_dataset(manifest, image_column="f", label_column="y")
    assert isinstance(dataset, CSVManifest)
    assert detect_format(folder)[0] == "folder"


def test_open_dataset_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "plain.csv").write_text("a,b\n")
    with pytest.raises(ConfigError, match="neither HAM10000 metadata nor ISIC") as caught:
        open_dataset(tmp_path / "plain.csv")
    assert "--format csv" in (caught.value.hint or "")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="cannot tell"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(ConfigError, match="its options are root, classes, group_pattern, verify"):
        open_dataset(tmp_path, format="folder", colour="red")


# ----------------------------------------------------------------------------- config, plugins


@pytest.mark.parametrize(
    "dataset",
    [
        ImageFolder("data/x", classes=["b", "a"], group_pattern=r"(\d+)", verify=False),
        HAM10000(Path("data/ham10000")),
        CSVManifest(
            "m.csv",
            "f",
            "y",
            group_column="g",
            image_root="img",
            classes=("a",),
            metadata_columns=("s",),
        ),
        ISICGroundTruth("gt.csv", "imgs", classes=["mel", "nv"]),
    ],
)
def test_options_round_trip_through_json(dataset: Any) -> None:
    from dermkit.config import build_component, component_config

    config = json.loads(json.dumps(attrs.asdict(dataset)))
    assert isinstance(dataset, Dataset)
    assert type(dataset)(**config) == dataset
    saved = json.loads(json.dumps(component_config(dataset)))
    assert saved["name"] == type(dataset).name
    assert build_component("datasets", saved) == dataset


def test_datasets_are_registered_as_plugins() -> None:
    from dermkit import plugins

    names = plugins.available()["datasets"]
    assert {"folder", "ham10000", "csv", "isic-gt"} <= set(names)
    assert names["ham10000"] == "dermkit.data.plugin"
    assert plugins.lookup("datasets", "isic-gt") is ISICGroundTruth


# ----------------------------------------------------------------------------- CLI


def test_inspect_json(tiny_ham10000: Path) -> None:
    (tiny_ham10000 / "images" / "ISIC_0000.jpg").write_bytes(b"")
    code, out, _ = run_cli("data", "inspect", str(tiny_ham10000), "--json")
    assert code == 0
    report = json.loads(out)
    assert set(report) == {
        "source",
        "format",
        "images",
        "lesions",
        "classes",
        "imbalance_ratio",
        "skipped",
        "ignored",
        "found",
        "warnings",
        "errors",
    }
    assert report["format"] == "ham10000"
    assert (report["images"], report["lesions"], report["found"]) == (27, 14, 28)
    akiec = report["classes"][0]
    assert set(akiec) == {"name", "images", "lesions", "weight_balanced", "weight_majority"}
    assert (akiec["name"], akiec["images"], akiec["lesions"]) == ("akiec", 3, 2)
    assert akiec["weight_majority"] == pytest.approx(4 / 3)
    assert akiec["weight_balanced"] == pytest.approx(27 / (7 * 3))
    assert report["imbalance_ratio"] == pytest.approx(4 / 3)
    assert report["skipped"] == [
        {
            "source": str(tiny_ham10000 / "images" / "ISIC_0000.jpg"),
            "reason": "empty file (0 bytes)",
            "hint": report["skipped"][0]["hint"],
        }
    ]


def test_inspect_text_lists_classes_weights_and_skipped(
    tmp_path: Path, make_image_folder: Callable[..., Path]
) -> None:
    root = make_image_folder(tmp_path / "d", {"mel": 1, "nv": 3})
    (root / "nv" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    code, out, _ = run_cli("data", "inspect", str(root))
    assert code == 0
    assert "mel" in out and "nv" in out and "total" in out
    assert "imbalance ratio (largest / smallest class): 3.00" in out
    assert "broken.png: truncated PNG" in out
    assert "found 5 inputs: 4 images used, 1 skipped" in out


def test_inspect_empty_class_has_no_ratio_and_exits_2_after_the_report(
    tmp_path: Path, make_image_folder: Callable[..., Path]
) -> None:
    root = make_image_folder(tmp_path / "d", {"mel": 1, "nv": 2})
    (root / "df").mkdir()
    code, out, err = run_cli("data", "inspect", str(root), "--json", "--no-verify")
    report = json.loads(out)
    assert code == 2 and report["imbalance_ratio"] is None
    assert report["classes"][0]["weight_balanced"] == 0.0
    assert len(report["errors"]) == 1
    assert report["errors"][0].startswith(f"{root / 'df'}: class 'df' has no usable images")
    assert "class 'df' has no usable images" in err


def test_inspect_bad_input_exits_2_with_one_line(
    tmp_path: Path, make_image_folder: Callable[..., Path]
) -> None:
    code, out, err = run_cli("data", "inspect", str(tmp_path / "missing"))
    assert code == 2 and "no such file or folder" in err and not out
    root = make_image_folder(tmp_path / "d", {"mel": 1})
    (root / "mel" / "bad.jpg").write_text("nope")
    code, _, err = run_cli("data", "inspect", str(root), "--strict")
    assert code == 2 and "bad.jpg: not an image" in err


def test_inspect_csv_options(tmp_path: Path, write_image: ImageWriter) -> None:
    write_image(tmp_path / "x.jpg")
    (tmp_path / "m.csv").write_text("f,y,g\nx.jpg,nv,L1\n")
    code, out, _ = run_cli(
        "data",
        "inspect",
        str(tmp_path / "m.csv"),
        "--format",
        "csv",
        "--json",
        "--image-column",
        "f",
        "--label-column",
        "y",
        "--group-column",
        "g",
    )
    assert code == 0 and json.loads(out)["format"] == "csv"
