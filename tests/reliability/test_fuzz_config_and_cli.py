"""Fuzzing ``config.json`` (unknown keys, wrong types, missing fields, random bytes) and the
command line (random flags and values for every command that reads input). Each gives a
usable result or a DermkitError with a message (argparse's usage error for the command
line); never another exception, a traceback or a hang."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dermkit.errors import DermkitError

from .faults import TALLY, survives

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _base_config() -> dict[str, Any]:
    from dermkit.balancers.class_weights import ClassWeights
    from dermkit.data.folder import ImageFolder
    from dermkit.experiment import Experiment

    data = ImageFolder(Path(tempfile.gettempdir()) / "dermkit-fuzz-no-such-data")
    return Experiment(data=data, model="lfn", balancer=[ClassWeights()]).to_config()


BASE = _base_config()


def _paths(config: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix] if prefix else []
    if isinstance(config, dict):
        for key, value in config.items():
            found.extend(_paths(value, (*prefix, key)))
    return found


PATHS = _paths(BASE)


def _edit(config: dict[str, Any], path: tuple[str, ...], how: str, value: Any) -> None:
    parent: Any = config
    for key in path[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(parent, dict):
        return
    if how == "delete":
        parent.pop(path[-1], None)
    elif how == "replace":
        parent[path[-1]] = value
    else:  # an unknown key beside it
        parent[f"unknown_{path[-1]}"] = value


TOP = [path for path in PATHS if len(path) == 1]


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(TOP) | st.sampled_from(PATHS),
            st.sampled_from(["delete", "replace", "add"]),
            JSON_VALUES,
        ),
        min_size=1,
        max_size=4,
    )
)
# wrong types where a component, a section or a setting belongs (found by this fuzzer)
@example([(("data",), "replace", 5)])
@example([(("model",), "replace", [1])])
@example([(("image",), "replace", 3)])
@example([(("training",), "replace", [])])
@example([(("limit",), "replace", "abc")])
@example([(("strict",), "replace", "yes")])
@example([(("cache_dir",), "replace", 5)])
@example([(("limit",), "add", 1)])  # unknown key "unknown_limit"
def test_mutated_configs(edits: list[tuple[tuple[str, ...], str, Any]]) -> None:
    from dermkit.experiment import Experiment

    config = copy.deepcopy(BASE)
    for path, how, value in edits:
        _edit(config, path, how, value)
    result = survives(lambda: Experiment.from_config(config))
    if not isinstance(result, DermkitError):
        # accepted: then it must be a recipe that writes itself back and reads again
        again = survives(lambda: Experiment.from_config(result.to_config()))
        assert not isinstance(again, DermkitError), again


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300),
        JSON_VALUES.map(_json),
        st.dictionaries(st.sampled_from([p[0] for p in TOP]), JSON_VALUES, max_size=4).map(_json),
    )
)
@example(b'{"image": 3}')
@example(b'{"data": {"name": "folder", "root": 5}, "model": "lfn", "split": "grouped"}')
def test_config_files_of_any_content(data: bytes) -> None:
    from dermkit.cli.recipe import apply_flags, read_recipe
    from dermkit.experiment import Experiment
    from dermkit.run_folder import read_saved_config

    folder = Path(tempfile.mkdtemp(prefix="dermkit-fuzz-config-"))
    try:
        (folder / "config.json").write_bytes(data)
        survives(lambda: read_recipe(str(folder / "config.json")))
        saved = survives(lambda: read_saved_config(folder))
        if isinstance(saved, dict):
            survives(lambda: apply_flags(saved, {"image_size": 64, "epochs": 2, "limit": 9}))
            survives(lambda: Experiment.from_config(saved))
    finally:
        shutil.rmtree(folder)


# ------------------------------------------------------------------ the command line

COMMANDS = [
    ["data", "inspect"],
    ["train"],
    ["resume"],
    ["predict"],
    ["evaluate"],
    ["compare"],
    ["export"],
    ["plugins"],
]
FLAGS = [
    "--data", "--out", "--config", "--resume", "--model", "--model-option", "--image-size",
    "--epochs", "--batch-size", "--lr", "--optimizer", "--schedule", "--balancer", "--val",
    "--test", "--seed", "--kfold", "--fold", "--split-file", "--limit", "--strict",
    "--max-minutes", "--feature-cache", "--cache-views", "--format", "--classes",
    "--image-column", "--label-column", "--group-column", "--top-k", "--json", "--csv",
    "--trust-model-code", "--early-stopping", "--mixed-precision", "--cache-dir",
]  # fmt: skip
VALUES = ["0", "-1", "1e309", "nan", "abc", "lfn", "none", "a=b", "=", "", "7", "0.5", "ünï"]


@st.composite
def argv(draw: Any, where: Path) -> list[str]:
    places = [str(where / "missing"), str(where / "empty"), str(where / "junk.csv")]
    tokens = st.sampled_from(FLAGS + VALUES + places) | st.text(max_size=6)
    command = draw(st.sampled_from(COMMANDS))
    return [*command, *draw(st.lists(tokens, max_size=8))]


SANDBOX = Path(tempfile.mkdtemp(prefix="dermkit-fuzz-cli-"))
(SANDBOX / "empty").mkdir(exist_ok=True)
(SANDBOX / "junk.csv").write_bytes(b"\xff\xfe,,\n\x00")


@FUZZ
@given(argv(SANDBOX))
def test_random_command_lines(arguments: list[str]) -> None:
    from dermkit.cli.main import main

    out, err = io.StringIO(), io.StringIO()

    def call() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                return main(arguments)
            except SystemExit as usage:  # argparse: a usage line and exit code 2 (0: --help)
                return int(usage.code or 0)

    code = survives(call, seconds=30)
    assert code in (0, 2), (arguments, code, err.getvalue()[-2000:])
    text = err.getvalue()
    assert "Traceback" not in text, (arguments, text)
    if code == 2:
        TALLY["fuzz refused with a DermkitError"] += 1
        assert "dermkit: error:" in text or "usage:" in text, (arguments, text)
