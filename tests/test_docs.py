"""The documentation site does not lie: its examples run, its references match the code.

**Runnable examples.** A fenced ``bash`` or ``python`` block in ``docs/**/*.md`` that
follows the line ``<!-- runnable -->`` (or ``<!-- runnable requires=MODULE -->``, for a
block that needs an optional package such as the example plugin) runs here, in page
order, each page in a fresh folder (its "sandbox") that holds small synthetic
stand-ins for the data the pages name:

- ``my_images/``: a folder per class of ``dermkit demo``'s synthetic drawings;
- ``new_images/``: three unlabelled images;
- ``data/ham10000/``: a HAM10000-shaped folder (7 classes, metadata with lesion ids);
- ``data/isic2018/``: an ISIC 2018 Task 3 ground-truth CSV and its ``_Input`` folder;
- ``examples/``: the repository's example scripts.

Bash blocks run in ``bash -euo pipefail`` with this interpreter's ``dermkit`` and
``python`` first on ``PATH``; Python blocks run in this process, sharing one namespace
per page. Runnable blocks are written as quick runs (an epoch or two on small
images), so this is the smoke run of every documented workflow.

**References.** The command-line and configuration references are generated at build
time by the hooks in ``docs/hooks/``; the tests check that they cover every command,
option and component. The run-folder reference is checked against the files a real
run writes. Links and images of the built site are checked by
``docs/tools/check_site.py``, which CI runs on the site; its own test is here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

from conftest import synthetic_image, write_ham10000, write_image_file
from dermkit.core import HAM10000_CLASSES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MARKER = re.compile(
    r"^<!-- runnable(?: requires=(?P<requires>[\w.]+))? -->\n"
    r"```(?P<language>bash|python)[^\n]*\n(?P<code>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


@attrs.frozen
class Block:
    """One runnable code block of a documentation page."""

    page: str
    line: int
    language: str
    code: str
    requires: str | None


def runnable_blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    name = page.relative_to(DOCS).as_posix()
    return [
        Block(
            page=name,
            line=text.count("\n", 0, found.start()) + 2,
            language=found["language"],
            code=found["code"],
            requires=found["requires"],
        )
        for found in MARKER.finditer(text)
    ]


PAGES: dict[str, list[Block]] = {
    page.relative_to(DOCS).as_posix(): blocks
    for page in sorted(DOCS.rglob("*.md"))
    if (blocks := runnable_blocks(page))
}


def load_tool(path: Path) -> ModuleType:
    """A module of docs/hooks or docs/tools (not a package), loaded by path."""
    spec = importlib.util.spec_from_file_location(f"docs_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ the sandbox
def make_sandbox(root: Path) -> Path:
    """The data the runnable examples name, small and synthetic."""
    from dermkit.demo import make_demo_dataset

    make_demo_dataset(root / "my_images", size=64, scale=0.2)
    (root / "new_images").mkdir()
    for index, image in enumerate(sorted((root / "my_images").rglob("*.png"))[::20][:3]):
        shutil.copyfile(image, root / "new_images" / f"lesion{index + 1}.png")

    rows = [
        {"lesion_id": f"HAM_{label}{lesion}", "image_id": f"ISIC_{label}{lesion}{image}", "dx": dx}
        for label, dx in enumerate(HAM10000_CLASSES)
        for lesion in range(5)
        for image in range(2 if lesion == 0 else 1)
    ]
    write_ham10000(root / "data" / "ham10000", rows, size=32)

    isic = root / "data" / "isic2018"
    (isic / "ISIC2018_Task3_Test_Input").mkdir(parents=True)
    columns = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    lines = ["image," + ",".join(columns)]
    for index in range(2 * len(columns)):
        image_id = f"ISIC_{9000000 + index}"
        truth = columns[index % len(columns)]
        lines.append(image_id + "," + ",".join("1.0" if c == truth else "0.0" for c in columns))
        write_image_file(
            isic / "ISIC2018_Task3_Test_Input" / f"{image_id}.jpg",
            synthetic_image(32, 32, seed=100 + index),
        )
    (isic / "ISIC2018_Task3_Test_GroundTruth.csv").write_text("\n".join(lines) + "\n")

    (root / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    return root


def _environment(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    python_path = [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(python_path)
    env.pop("DERMKIT_HAM10000", None)  # the pages name their data explicitly
    env.update(DERMKIT_CACHE=str(cache), TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg")
    return env


def _run_bash(block: Block, sandbox: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=sandbox,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, (
        f"{block.page}, block at line {block.line} exited with {done.returncode}:\n"
        f"{block.code}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
    return done.stdout


def _run_python(block: Block, namespace: dict[str, Any]) -> str:
    output = io.StringIO()
    code = compile(block.code, f"{block.page}:{block.line}", "exec")
    with contextlib.redirect_stdout(output):
        exec(code, namespace)
    return output.getvalue()


@pytest.fixture(scope="module")
def run_page(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], tuple[Path, list[str]]]]:
    """``run_page(page)``: run a page's blocks once in its sandbox; (sandbox, outputs)."""
    done: dict[str, tuple[Path, list[str]]] = {}
    saved_path, saved_cwd = list(sys.path), Path.cwd()

    def run(page: str) -> tuple[Path, list[str]]:
        if page in done:
            return done[page]
        sandbox = make_sandbox(tmp_path_factory.mktemp(Path(page).stem))
        env = _environment(tmp_path_factory.mktemp("cache"))
        namespace: dict[str, Any] = {"__name__": "__docs__"}
        outputs: list[str] = []
        os.chdir(sandbox)
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("DERMKIT_CACHE", env["DERMKIT_CACHE"])
                patch.delenv("DERMKIT_HAM10000", raising=False)
                for block in PAGES[page]:
                    if block.requires and importlib.util.find_spec(block.requires) is None:
                        pytest.skip(f"{page} needs {block.requires}, which is not installed")
                    if block.language == "bash":
                        outputs.append(_run_bash(block, sandbox, env))
                    else:
                        outputs.append(_run_python(block, namespace))
        finally:
            os.chdir(saved_cwd)
            sys.path[:] = saved_path
        done[page] = (sandbox, outputs)
        return done[page]

    yield run


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(PAGES))
def test_runnable_examples_run(
    run_page: Callable[[str], tuple[Path, list[str]]], page: str
) -> None:
    _, outputs = run_page(page)
    assert len(outputs) == len(PAGES[page])


def test_the_pages_that_promise_runnable_examples_have_them() -> None:
    expected = {
        "getting-started.md",
        "tutorials/reproduce-the-study.md",
        "tutorials/evaluate-on-isic-2018.md",
        "how-to/choose-an-imbalance-strategy.md",
        "how-to/split-without-leakage.md",
        "how-to/write-a-plugin.md",
    }
    assert expected <= set(PAGES)
    for page in DOCS.rglob("*.md"):  # a misspelt marker would silently not run
        for line in page.read_text(encoding="utf-8").splitlines():
            if "runnable" in line and line.startswith("<!--"):
                assert re.fullmatch(r"<!-- runnable(?: requires=[\w.]+)? -->", line), (page, line)


# ------------------------------------------------------------------ generated references
def test_the_cli_reference_lists_every_command_and_option() -> None:
    import argparse

    from dermkit.cli.main import build_parser

    hook = load_tool(DOCS / "hooks" / "cli_reference.py")
    parser = build_parser()
    text = hook.render(parser)
    listed = list(hook.commands(parser))
    assert {" ".join(path) for path, _, _ in listed} >= {
        "data inspect", "train", "evaluate", "predict", "compare", "plugins", "demo"
    }  # fmt: skip
    for path, sub, _ in listed:
        assert f"## `dermkit {' '.join(path)}`" in text
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            names = action.option_strings or [action.metavar or action.dest.upper()]
            assert any(f"`{name}" in text for name in names), (path, names)
    page = (DOCS / hook.PAGE).read_text(encoding="utf-8")
    assert hook.MARKER in page


def test_the_configuration_reference_covers_every_key_and_built_in_option() -> None:
    import attrs as attrs_module

    from dermkit import plugins
    from dermkit.experiment import Experiment

    hook = load_tool(DOCS / "hooks" / "config_reference.py")
    text = hook.render()
    for kind in ("datasets", "splitters", "models", "balancers", "evaluators"):
        for name, item in plugins.provided(kind).items():
            if item.plugin not in plugins.DEFAULT_PLUGINS:
                continue
            assert f'`"name": "{name}"`' in text
            for field in attrs_module.fields(item.factory):
                assert f"| `{field.name}` |" in text, (name, field.name)

    page = (DOCS / hook.PAGE).read_text(encoding="utf-8")
    assert hook.MARKER in page
    top_level = page.split("## Top level", 1)[1].split("##", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", top_level, re.MULTILINE))
    from dermkit.data.folder import ImageFolder

    written = Experiment(data=ImageFolder("unused"), model="lfn").to_config()
    assert documented == set(written)


def test_the_json_types_of_options_read_as_json() -> None:
    from typing import Literal

    hook = load_tool(DOCS / "hooks" / "config_reference.py")
    assert hook.json_type(int | None) == "integer or null"
    assert hook.json_type(tuple[int, ...]) == "list of integer"
    assert hook.json_type(Literal["a", "b"]) == '`"a"` \\| `"b"`'


@pytest.mark.slow
def test_the_run_folder_reference_lists_exactly_the_files_a_run_writes(
    run_page: Callable[[str], tuple[Path, list[str]]],
) -> None:
    """The getting-started page trains ``runs/first``; every file in it must be documented."""
    sandbox, _ = run_page("getting-started.md")
    run = sandbox / "runs" / "first"
    written = {
        path.relative_to(run).as_posix()
        for path in run.rglob("*")
        if path.is_file() and not path.relative_to(run).as_posix().startswith("report_")
    }
    written |= {f"{part}/" for part in ("report_val", "report_test") if (run / part).is_dir()}
    page = (DOCS / "reference" / "run-folder.md").read_text(encoding="utf-8")
    files_table = page.split("## Files", 1)[1].split("##", 1)[0]
    documented = {
        name
        for row in re.findall(r"^\| (.+?) \|", files_table, re.MULTILINE)
        for name in re.findall(r"`([^`]+)`", row)
    }
    assert written == documented, (
        f"undocumented: {written - documented}, gone: {documented - written}"
    )

    report = {p.name for p in (run / "report_test").iterdir()}
    report_table = page.split("## A report folder", 1)[1].split("`dermkit evaluate RUN", 1)[0]
    assert report == set(re.findall(r"^\| `([^`]+)` \|", report_table, re.MULTILINE))


# ------------------------------------------------------------------ images and links
def test_every_image_in_docs_images_is_used_and_every_used_image_exists() -> None:
    used: set[str] = set()
    for page in DOCS.rglob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            path = (page.parent / target).resolve()
            assert path.is_file(), f"{page.relative_to(DOCS)} shows a missing image {target}"
            used.add(path.name)
    present = {p.name for p in (DOCS / "images").iterdir()}
    assert present == used, f"unused images: {present - used}"


def test_the_site_checker_finds_broken_links_images_and_anchors(tmp_path: Path) -> None:
    checker = load_tool(DOCS / "tools" / "check_site.py")
    (tmp_path / "guide").mkdir()
    (tmp_path / "img.png").write_bytes(b"png")
    (tmp_path / "index.html").write_text(
        '<h1 id="top">x</h1><a href="guide/">ok</a><a href="guide/#part">ok</a>'
        '<img src="img.png"><a href="https://example.org/x">external</a>'
        '<a href="#top">self</a><a href="mailto:a@b.c">mail</a>'
    )
    (tmp_path / "guide" / "index.html").write_text('<h2 id="part">y</h2><a href="../">up</a>')
    assert checker.check_site(tmp_path) == []

    (tmp_path / "guide" / "index.html").write_text(
        '<h2 id="part">y</h2><a href="../missing/">a</a><img src="../nope.png">'
        '<a href="../#gone">b</a>'
        '<link href="../style.css" rel="stylesheet">'
    )
    problems = checker.check_site(tmp_path)
    assert len(problems) == 4
    assert any("missing/" in p for p in problems) and any("nope.png" in p for p in problems)
    assert any("#gone" in p for p in problems) and any("style.css" in p for p in problems)


def test_the_example_scripts_are_all_run_by_the_example_tests() -> None:
    """Every script in examples/ is smoke-run by tests/test_examples.py (not only listed)."""
    source = (ROOT / "tests" / "test_examples.py").read_text(encoding="utf-8")
    scripts = {p.stem for p in (ROOT / "examples").glob("*.py")} - {"study"}
    for name in scripts:
        assert f'"{name}"' in source, f"examples/{name}.py is not run by tests/test_examples.py"
    assert "def test_lfn_attempts_run_end_to_end" in source
    assert "def test_backbone_attempts_run_end_to_end" in source


def test_sphinx_roles_in_docstrings_render_as_plain_code() -> None:
    hook = load_tool(DOCS / "hooks" / "sphinx_roles.py")
    html = "a :class:<code>~dermkit.core.Dataset</code> or :meth:<code>Experiment.run</code>"
    assert hook.plain(html) == "a <code>Dataset</code> or <code>Experiment.run</code>"
