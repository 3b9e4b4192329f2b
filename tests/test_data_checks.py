"""Nothing silently ignored or invented, and honest words about lesion grouping (issue 7, 3-4).

Every file under a dataset root is used or reported (links followed once), a label on a
handful of rows is refused as a likely typo, a dataset or class without usable images
stops inspect and training, repeated problems read as one line, and a split that
cannot be grouped by lesion is said so, with the column to use when one is there.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from conftest import ImageWriter, write_ham10000
from dermkit.cli.main import main
from dermkit.core import HAM10000_CLASSES, LoadedDataset, Problem
from dermkit.data.checks import (
    FOLDER_GROUPING_WARNING,
    ISIC_GROUPING_WARNING,
    group_problems,
    is_ignored,
    problem_lines,
    rare_labels,
    require_usable,
)
from dermkit.data.csv_manifest import CSVManifest
from dermkit.data.folder import ImageFolder
from dermkit.data.ham10000 import HAM10000
from dermkit.data.isic import ISICGroundTruth
from dermkit.errors import DataError

FolderMaker = Callable[..., Path]


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def accounted(loaded: LoadedDataset) -> None:
    assert loaded.found == len(loaded.records) + len(loaded.problems)


def reasons(loaded: LoadedDataset) -> dict[str, str]:
    return {Path(p.source).name: p.reason for p in loaded.problems}


def write_manifest(
    path: Path, rows: Sequence[Sequence[str]], header: Sequence[str] = ("image", "label")
) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


class _TinyModel:
    """A model factory that is never built: every test here stops before building."""

    name: ClassVar[str] = "never-built"
    default_input_size: ClassVar[int] = 32

    def build(self, num_classes: int, input_size: int | None = None) -> Any:
        raise AssertionError("the model must not be built for unusable data")

    def frozen_prefix_end(self, model: Any) -> str | None:
        return None


def experiment(data: Any) -> Any:
    from dermkit.experiment import Experiment

    return Experiment(data=data, model=_TinyModel(), cache_dir="")


# ============================================================================ 3a: links


def test_a_linked_folder_inside_a_class_folder_is_read(
    tmp_path: Path, make_image_folder: FolderMaker
) -> None:
    root = make_image_folder(tmp_path / "d", {"mel": 2, "nv": 2})
    elsewhere = make_image_folder(tmp_path / "elsewhere", {"more": 3})
    (root / "mel" / "more").symlink_to(elsewhere / "more", target_is_directory=True)
    loaded = ImageFolder(root).load()
    assert loaded.counts() == [5, 2]  # the three images behind the link are read
    assert not loaded.problems and loaded.found == 7
    code, out, _ = run_cli("data", "inspect", str(root))
    assert code == 0 and "found 7 inputs: 7 images used, 0 skipped" in out


def test_a_link_loop_is_reported_and_not_followed(
    tmp_path: Path, make_image_folder: FolderMaker
) -> None:
    root = make_image_folder(tmp_path / "d", {"mel": 2, "nv": 2})
    (root / "mel" / "again").symlink_to(root / "mel", target_is_directory=True)
    (root / "nv" / "top").symlink_to(root, target_is_directory=True)
    loaded = ImageFolder(root).load()
    assert loaded.counts() == [2, 2]
    why = reasons(loaded)
    assert "symbolic link to a folder above it" in why["again"]
    assert "symbolic link to a folder above it" in why["top"]
    assert all(is_ignored(p) for p in loaded.problems)
    accounted(loaded)


def test_a_folder_or_file_linked_twice_is_read_once_and_reported(
    tmp_path: Path, make_image_folder: FolderMaker
) -> None:
    root = make_image_folder(tmp_path / "d", {"mel": 2, "nv": 2})
    (root / "mel" / "copy").symlink_to(root / "nv", target_is_directory=True)
    (root / "nv" / "z_link.png").symlink_to(root / "mel" / "mel_000.png")
    loaded = ImageFolder(root).load()
    # a file's own place wins over a link to it: nv's images stay nv, read once
    assert loaded.counts() == [2, 2]
    why = reasons(loaded)
    assert why["copy"] == f"same folder as {root / 'nv'}, not read twice"
    assert why["z_link.png"] == f"same file as {root / 'mel' / 'mel_000.png'}, not read twice"
    paths = [r.path.resolve() for r in loaded.records]
    assert len(paths) == len(set(paths)) == 4  # every image once, never under two labels
    accounted(loaded)


def test_a_broken_link_is_a_skipped_input(tmp_path: Path, make_image_folder: FolderMaker) -> None:
    root = make_image_folder(tmp_path / "d", {"mel": 2, "nv": 2})
    (root / "nv" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    loaded = ImageFolder(root).load()
    (problem,) = loaded.problems
    assert problem.reason.startswith("broken symbolic link") and not is_ignored(problem)
    accounted(loaded)


# ============================================================================ 3a: every file


def test_every_file_under_a_folder_dataset_is_counted(
    tmp_path: Path, make_image_folder: FolderMaker
) -> None:
    root = make_image_folder(tmp_path / "d", {"mel": 3, "nv": 3})
    (root / ".DS_Store").write_bytes(b"\0")
    (root / "nv" / ".DS_Store").write_bytes(b"\0")
    (root / "README.md").write_text("about\n")
    (root / "nv" / "notes.txt").write_text("x\n")
    (root / "mel" / ".thumbs").mkdir()
    (root / "mel" / ".thumbs" / "mel_000.png").write_bytes(b"x")
    loaded = ImageFolder(root).load()
    assert len(loaded.records) == 6 and loaded.found == 11
    assert all(is_ignored(p) for p in loaded.problems)
    code, out, _ = run_cli("data", "inspect", str(root))
    assert code == 0
    assert "found 11 inputs: 6 images used, 0 skipped, 5 ignored" in out
    assert "ignored (not image data):" in out
    assert "2 hidden files, ignored: .DS_Store, nv/.DS_Store" in out
    assert "mel/.thumbs: hidden folder, not read" in out


def test_ham10000_reports_files_in_its_image_folder_that_no_row_names(tmp_path: Path) -> None:
    rows = [
        {"lesion_id": f"HAM_{i}", "image_id": f"ISIC_{i}", "dx": dx}
        for i, dx in enumerate(HAM10000_CLASSES)
    ]
    root = write_ham10000(tmp_path / "ham", rows)
    write_ham10000(tmp_path / "other", [{"lesion_id": "X", "image_id": "ISIC_99", "dx": "nv"}])
    (tmp_path / "other" / "images" / "ISIC_99.jpg").rename(root / "images" / "ISIC_99.jpg")
    (root / "images" / "LICENSE.txt").write_text("CC-BY-NC\n")
    (root / "README.md").write_text("beside the metadata: not the reader's business\n")
    loaded = HAM10000(root).load()
    assert len(loaded.records) == 7
    why = reasons(loaded)
    assert set(why) == {"ISIC_99.jpg", "LICENSE.txt"}
    assert why["ISIC_99.jpg"] == "image not listed in HAM10000_metadata.csv, ignored"
    assert all(is_ignored(p) for p in loaded.problems) and loaded.found == 9
    accounted(loaded)


def test_isic_and_csv_report_images_no_row_names(tmp_path: Path, write_image: ImageWriter) -> None:
    for i in range(3):
        write_image(tmp_path / "imgs" / f"ISIC_{i}.jpg", seed=i)
    (tmp_path / "imgs" / "ATTRIBUTION.txt").write_text("ISIC\n")
    (tmp_path / "gt.csv").write_text(
        "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\nISIC_0,1,0,0,0,0,0,0\nISIC_1,0,1,0,0,0,0,0\n"
    )
    loaded = ISICGroundTruth(tmp_path / "gt.csv", tmp_path / "imgs", classes=["mel", "nv"]).load()
    assert reasons(loaded) == {
        "ISIC_2.jpg": "image not listed in gt.csv, ignored",
        "ATTRIBUTION.txt": "not an image file, ignored",
    }
    accounted(loaded)
    # a ground-truth CSV kept beside its images is the dataset, not an ignored file
    (tmp_path / "imgs" / "gt.csv").write_text((tmp_path / "gt.csv").read_text())
    beside = ISICGroundTruth(tmp_path / "imgs" / "gt.csv", tmp_path / "imgs", classes=["mel", "nv"])
    assert set(reasons(beside.load())) == {"ISIC_2.jpg", "ATTRIBUTION.txt"}

    write_manifest(tmp_path / "imgs" / "m.csv", [["ISIC_0.jpg", "mel"], ["ISIC_1", "nv"]])
    loaded = CSVManifest(tmp_path / "imgs" / "m.csv", "image", "label").load()
    assert reasons(loaded) == {"ISIC_2.jpg": "image not listed in m.csv, ignored"}
    assert loaded.found == 3
    accounted(loaded)


# ============================================================================ 3b: rare labels


def _typo_manifest(tmp_path: Path, write_image: ImageWriter) -> Path:
    rows = []
    for i in range(50):
        label = "mel" if i < 15 else "nv"
        write_image(tmp_path / f"i{i}.png", 8, 8, seed=i)
        rows.append([f"i{i}.png", label])
    write_image(tmp_path / "i50.png", 8, 8, seed=50)
    rows.append(["i50.png", "mell"])
    return write_manifest(tmp_path / "m.csv", rows)


def test_a_typo_label_on_one_row_is_refused_naming_it_its_rows_and_the_closest(
    tmp_path: Path, write_image: ImageWriter
) -> None:
    manifest = _typo_manifest(tmp_path, write_image)
    with pytest.raises(DataError) as caught:
        CSVManifest(manifest, "image", "label", verify=False).load()
    error = caught.value
    assert error.where == str(manifest)
    assert "label 'mell' is on only 1 row of 51 (row 52)" in error.message
    assert "the closest other label is 'mel' (15 rows)" in error.message
    assert "--classes mel,mell,nv" in (error.hint or "")
    # listing the classes is how a real small class is accepted
    loaded = CSVManifest(manifest, "image", "label", classes=["mel", "mell", "nv"]).load()
    assert loaded.counts() == [15, 1, 35]
    code, _, err = run_cli(
        "data", "inspect", str(manifest), "--format", "csv", "--image-column", "image",
        "--label-column", "label", "--no-verify",
    )  # fmt: skip
    assert code == 2 and "label 'mell' is on only 1 row" in err


def test_a_class_folder_with_a_handful_of_images_is_refused_unless_listed(
    tmp_path: Path, make_image_folder: FolderMaker
) -> None:
    root = make_image_folder(tmp_path / "d", {"nevus": 30, "Nevus": 1, "mel": 12}, size=8)
    with pytest.raises(DataError, match=r"class folder 'Nevus' holds only 1 image of 43") as caught:
        ImageFolder(root, verify=False).load()
    assert "the closest other class folder is 'nevus' (30 images)" in caught.value.message
    loaded = ImageFolder(root, classes=["Nevus", "mel", "nevus"], verify=False).load()
    assert loaded.counts() == [1, 12, 30]


def test_small_datasets_and_real_small_classes_are_not_second_guessed(
    tmp_path: Path, make_image_folder: FolderMaker
) -> None:
    root = make_image_folder(tmp_path / "d", {"mel": 1, "nv": 3}, size=8)
    assert ImageFolder(root, verify=False).load().counts() == [1, 3]
    # the threshold: fewer than max(3, 0.5% of the rows), and the largest 10x bigger
    assert rare_labels({"a": 30, "b": 2}) == ["b"]
    assert rare_labels({"a": 30, "b": 3}) == []
    assert rare_labels({"a": 19, "b": 2}) == []
    assert rare_labels({"a": 10_000, "b": 50}) == ["b"]  # 0.5% of 10,050 is 50.25
    assert rare_labels({"a": 10_000, "b": 51}) == []
    assert rare_labels({"a": 4_519, "df": 115, "vasc": 142}) == []  # HAM10000's smallest


# ============================================================================ 3c, 3d: unusable


def test_an_empty_class_folder_stops_training_before_the_run_folder(
    tmp_path: Path, make_image_folder: FolderMaker
) -> None:
    root = make_image_folder(tmp_path / "d", {"mel": 3, "nv": 3}, size=8)
    (root / "df").mkdir()
    with pytest.raises(DataError, match="class 'df' has no usable images") as caught:
        experiment(ImageFolder(root, verify=False)).run(tmp_path / "run")
    assert caught.value.where == str(root / "df")
    assert not (tmp_path / "run").exists()


def test_a_listed_class_without_usable_images_is_an_error(
    tmp_path: Path, write_image: ImageWriter
) -> None:
    for i in range(4):
        write_image(tmp_path / f"i{i}.png", 8, 8, seed=i)
    (tmp_path / "bad.png").write_bytes(b"")
    manifest = write_manifest(
        tmp_path / "m.csv",
        [
            ["i0.png", "mel"],
            ["i1.png", "mel"],
            ["i2.png", "nv"],
            ["i3.png", "nv"],
            ["bad.png", "df"],
        ],
    )
    dataset = CSVManifest(manifest, "image", "label", classes=["mel", "nv", "df", "vasc"])
    with pytest.raises(DataError, match="classes 'df', 'vasc' have no usable images"):
        experiment(dataset).load_data()
    # a HAM10000 subset without some diagnoses cannot train a 7-output model either
    rows = [{"lesion_id": f"L{i}", "image_id": f"I{i}", "dx": "nv"} for i in range(3)]
    with pytest.raises(DataError, match="classes 'akiec', 'bcc', 'bkl', 'df', 'mel', 'vasc'"):
        experiment(HAM10000(write_ham10000(tmp_path / "ham", rows), verify=False)).load_data()


def _all_missing(tmp_path: Path, count: int = 51) -> Path:
    (tmp_path / "images").mkdir()
    rows = [[f"ISIC_{i}.jpg", "mel" if i % 2 else "nv", f"L{i}"] for i in range(1, count + 1)]
    return write_manifest(tmp_path / "m.csv", rows, header=("image", "label", "lesion"))


def test_a_dataset_without_usable_images_is_an_error_with_grouped_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _all_missing(tmp_path)
    args = ("--format", "csv", "--image-column", "image", "--label-column", "label")
    code, out, err = run_cli(
        "data", "inspect", str(manifest), *args, "--group-column", "lesion", "--image-root",
        str(tmp_path / "images"),
    )  # fmt: skip
    assert code == 2
    assert "found 53 inputs: 0 images used, 53 skipped" in out  # 51 rows, 2 empty classes
    assert "no usable images: none of the 51 inputs found could be used" in err
    assert f"51 images missing under {tmp_path / 'images'}" in err
    dataset = CSVManifest(manifest, "image", "label", image_root=tmp_path / "images")
    with pytest.raises(DataError, match="no usable images"):
        experiment(dataset).load_data()
    # training shows the grouped reasons first, pointing where the full list is
    assert "(first 5 shown; all listed in `dermkit data inspect --json`)" in capsys.readouterr().err


def test_class_folders_without_any_file_are_an_error(tmp_path: Path) -> None:
    for name in ("mel", "nv"):
        (tmp_path / "d" / name).mkdir(parents=True)
    with pytest.raises(DataError, match="the dataset holds no images"):
        require_usable(ImageFolder(tmp_path / "d").load())


# ============================================================================ 3e: grouped


def test_repeated_problems_are_one_line_in_inspect(tmp_path: Path) -> None:
    manifest = _all_missing(tmp_path, count=51)
    (tmp_path / "other.png").write_bytes(b"")  # one of a kind: keeps its own line
    code, out, _ = run_cli(
        "data", "inspect", str(manifest), "--format", "csv", "--image-column", "image",
        "--label-column", "label", "--group-column", "lesion",
    )  # fmt: skip
    assert code == 2
    assert f"{tmp_path / 'other.png'}: image not listed in m.csv, ignored" in out
    lines = [line for line in out.splitlines() if "ISIC_" in line]
    assert len(lines) == 1
    assert lines[0].strip() == (
        f"51 images missing under {tmp_path}: ISIC_1.jpg, ISIC_2.jpg, ISIC_3.jpg, ISIC_4.jpg, "
        "ISIC_5.jpg, ... (first 5 shown; all listed in the --json output) "
        "(add the image, fix the path, or set image_root)"
    )


def test_group_problems_keeps_single_lines_and_groups_plain_problems_by_reason() -> None:
    problems = [
        Problem("a.jpg", "unreadable", "fix it"),
        Problem("b.jpg", "unreadable", "fix it"),
        Problem("c.jpg", "too dark", ""),
    ]
    groups = group_problems(problems)
    assert [g.count for g in groups] == [2, 1]
    assert problem_lines(problems, ignored=False) == [
        "2 inputs: unreadable: a.jpg, b.jpg (fix it)",
        "c.jpg: too dark",
    ]
    assert problem_lines(problems, ignored=True) == []


def test_training_prints_grouped_problems_and_warnings(
    tmp_path: Path, make_image_folder: FolderMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_image_folder(tmp_path / "d", {"mel": 3, "nv": 3}, size=8)
    for i in range(7):
        (root / "nv" / f"broken{i}.png").write_bytes(b"")
    experiment(ImageFolder(root)).load_data()
    err = capsys.readouterr().err
    assert err.count("broken") == 5  # five shown, on one line
    assert "dermkit: skipped: 7 unreadable images (empty file (0 bytes)): nv/broken0.png" in err
    assert "(first 5 shown; all listed in problems.json)" in err
    assert f"dermkit: warning: {FOLDER_GROUPING_WARNING}" in err


# ============================================================================ 4: grouping


def _ham_as_csv(tmp_path: Path) -> Path:
    rows = []
    for label, dx in enumerate(HAM10000_CLASSES):
        for i in range(6):
            rows.append(
                {"lesion_id": f"HAM_{label}{i // 2}", "image_id": f"ISIC_{label}{i}", "dx": dx}
            )
    return write_ham10000(tmp_path / "ham", rows, size=8)


def test_ham10000_metadata_read_as_a_generic_csv_suggests_lesion_id(tmp_path: Path) -> None:
    root = _ham_as_csv(tmp_path)
    args = ["--format", "csv", "--image-column", "image_id", "--label-column", "dx"]
    args += ["--image-root", str(root / "images"), "--no-verify"]
    code, out, _ = run_cli("data", "inspect", str(root / "HAM10000_metadata.csv"), *args)
    assert code == 0
    assert "warnings:" in out
    assert "every image is its own group" in out
    assert "pass group_column='lesion_id' (--group-column lesion_id)" in out
    assert "--format ham10000" in out
    code, out, _ = run_cli(
        "data", "inspect", str(root / "HAM10000_metadata.csv"), *args, "--json",
        "--group-column", "lesion_id",
    )  # fmt: skip
    report = json.loads(out)
    assert report["warnings"] == [] and report["lesions"] == 21
    assert HAM10000(root, verify=False).load().warnings == ()


def test_a_lesion_like_column_is_found_by_name_or_by_its_values(tmp_path: Path) -> None:
    rows = []
    for i in range(40):
        label = "mel" if i < 12 else "nv"
        # 'case' holds a lesion id under an unhelpful name: 2 images per lesion, one label
        rows.append([f"i{i}", label, f"P{i // 4}", f"C{i // 2}", "back" if i % 3 else "arm"])
    manifest = write_manifest(
        tmp_path / "m.csv", rows, header=("image", "label", "patient_id", "case", "site")
    )
    (warning,) = CSVManifest(manifest, "image", "label", verify=False).load().warnings
    assert "Column 'patient_id' looks like a lesion id (10 groups for 40 images)" in warning
    assert "other candidates: case" in warning and "site" not in warning
    grouped = CSVManifest(manifest, "image", "label", group_column="case", verify=False)
    assert grouped.load().warnings == ()
    # a group column that never repeats groups nothing: say so when a better one is there
    unique = CSVManifest(manifest, "image", "label", group_column="image", verify=False)
    (warning,) = unique.load().warnings
    assert warning.startswith("group column 'image' has a different value on every row")


def test_a_csv_with_no_lesion_like_column_still_warns(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [["a", "mel"], ["b", "nv"], ["c", "nv"]])
    (warning,) = CSVManifest(manifest, "image", "label", verify=False).load().warnings
    assert warning.startswith("no group column: every image is its own group")
    assert "--group-column" in warning


def test_folder_and_isic_datasets_say_they_cannot_be_grouped(
    tmp_path: Path, make_image_folder: FolderMaker, write_image: ImageWriter
) -> None:
    root = make_image_folder(tmp_path / "d", {"mel": 2, "nv": 2}, size=8)
    assert ImageFolder(root, verify=False).load().warnings == (FOLDER_GROUPING_WARNING,)
    grouped = ImageFolder(root, group_pattern=r"^(\w+)_\d+", verify=False).load()
    assert grouped.warnings == ()
    code, out, _ = run_cli("data", "inspect", str(root), "--json", "--no-verify")
    assert code == 0 and json.loads(out)["warnings"] == [FOLDER_GROUPING_WARNING]
    write_image(tmp_path / "imgs" / "ISIC_0.jpg")
    (tmp_path / "gt.csv").write_text("image,MEL,NV\nISIC_0,1,0\n")
    isic = ISICGroundTruth(tmp_path / "gt.csv", tmp_path / "imgs", classes=["mel"]).load()
    assert isic.warnings == (ISIC_GROUPING_WARNING,)


@pytest.mark.ham10000
def test_real_ham10000_loads_cleanly_and_warns_as_a_generic_csv(ham10000_path: Path) -> None:
    loaded = HAM10000(ham10000_path, verify=False).load()
    assert (len(loaded.records), loaded.found, loaded.problems) == (7064, 7064, ())
    assert loaded.warnings == ()
    generic = CSVManifest(
        ham10000_path / "HAM10000_metadata.csv",
        "image_id",
        "dx",
        image_root=ham10000_path / "images",
        verify=False,
    ).load()
    assert len(generic.records) == 7064 and not generic.problems
    (warning,) = generic.warnings
    assert "Column 'lesion_id' looks like a lesion id (6,319 groups for 7,064 images)" in warning
