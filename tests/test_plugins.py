"""The plugin registry: built-ins through the hooks, entry points, conflicts, broken plugins."""

from __future__ import annotations

import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from dermkit import plugins
from dermkit.errors import PluginError


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    plugins.reset()
    yield
    plugins.reset()


def install_entry_point_plugin(
    site: Path, dist: str, module: str, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Write a real installed distribution (a .dist-info with entry_points.txt) into ``site``.

    The folder is named as wheels name it (``dermkit_flip_only-1.2.3.dist-info``):
    importlib.metadata takes the name up to the first hyphen, so a hyphenated name would
    read as a second "dermkit" and be dropped as a duplicate.
    """
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[dermkit]\n{module} = {module}\n")
    monkeypatch.syspath_prepend(str(site))


def test_builtins_are_registered_through_the_hooks() -> None:
    found = plugins.available()
    assert found["balancers"]["class_weights"] == "dermkit.balancers.plugin"
    assert {"augment", "oversample", "balanced_batches"} <= set(found["balancers"])
    assert set(found) == {"datasets", "splitters", "models", "balancers", "evaluators"}


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(PluginError, match=r"no balancer named 'nope'.*class_weights"):
        plugins.lookup("balancers", "nope")
    with pytest.raises(PluginError, match="unknown plugin kind"):
        plugins.provided("gizmos")


def test_third_party_plugin_through_a_real_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_entry_point_plugin(
        tmp_path,
        "dermkit-flip-only",
        "dermkit_flip_only",
        """
        from typing import ClassVar
        import attrs
        from dermkit import hookimpl
        from dermkit.core import TrainingPlan

        @attrs.frozen
        class FlipOnly:
            name: ClassVar[str] = "flip_only"
            def apply(self, plan, context):
                return attrs.evolve(plan, augmentations=("flip",), notes=(*plan.notes, "flip only"))

        @hookimpl
        def dermkit_balancers():
            return {"flip_only": FlipOnly}
        """,
        monkeypatch,
    )
    found = plugins.available()
    assert found["balancers"]["flip_only"] == "dermkit-flip-only:dermkit_flip_only"
    info = {p["name"]: p for p in plugins.plugin_info()}
    assert info["dermkit-flip-only:dermkit_flip_only"]["version"] == "1.2.3"

    # ... and it is usable through the public API, by name, like a built-in.
    from dermkit import ClassIndex, Record
    from dermkit.config import build_component, component_config
    from dermkit.experiment import Experiment

    balancer = build_component("balancers", "flip_only")
    assert component_config(balancer) == {"name": "flip_only"}
    experiment = Experiment(data=_EmptyData(), model=_NoModel(), balancer=["flip_only"])
    classes = ClassIndex(("a", "b"))
    plan = experiment.make_plan([Record("x.png", 0, "g"), Record("y.png", 1, "h")], classes)
    assert plan.augmentations == ("flip",)
    assert plan.notes == ("flip only",)


def test_a_name_claimed_twice_names_both_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_entry_point_plugin(
        tmp_path,
        "dermkit-evil-twin",
        "dermkit_evil_twin",
        """
        from dermkit import hookimpl

        @hookimpl
        def dermkit_balancers():
            return {"class_weights": dict}
        """,
        monkeypatch,
    )
    with pytest.raises(PluginError) as caught:
        plugins.lookup("balancers", "class_weights")
    message = str(caught.value)
    assert (
        "dermkit.balancers.plugin" in message and "dermkit-evil-twin:dermkit_evil_twin" in message
    )
    # other kinds are unaffected
    assert "standard" in plugins.provided("evaluators")


def test_broken_plugins_warn_and_the_rest_keeps_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_entry_point_plugin(
        tmp_path,
        "dermkit-bad-import",
        "dermkit_bad_import",
        "raise RuntimeError('boom')\n",
        monkeypatch,
    )
    install_entry_point_plugin(
        tmp_path,
        "dermkit-bad-hook",
        "dermkit_bad_hook",
        """
        from dermkit import hookimpl

        @hookimpl
        def dermkit_models():
            raise ValueError("hook exploded")
        """,
        monkeypatch,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = plugins.available()
    messages = " ".join(str(w.message) for w in caught)
    assert "dermkit-bad-import:dermkit_bad_import" in messages and "boom" in messages
    assert "dermkit-bad-hook:dermkit_bad_hook" in messages and "hook exploded" in messages
    assert "lfn" in found["models"] and "class_weights" in found["balancers"]
    assert set(plugins.broken()) == {
        "dermkit-bad-import:dermkit_bad_import",
        "dermkit-bad-hook:dermkit_bad_hook",
    }
    sys.modules.pop("dermkit_bad_hook", None)


def test_plugins_command_lists_providers(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from dermkit.cli.main import main

    assert main(["plugins", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["components"]["models"]["lfn"] == "dermkit.models.plugin"
    assert main(["plugins"]) == 0
    import re

    assert re.search(r"class_weights +from dermkit.balancers.plugin", capsys.readouterr().out)


class _EmptyData:
    name = "empty"

    def load(self, *, strict: bool = False) -> object:
        raise AssertionError("not loaded in this test")


class _NoModel:
    name = "none"
    default_input_size = 8
