"""A plugin whose hook raises or returns garbage is named in a warning; the rest keep working."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from dermkit import hookimpl, plugins


def _plugin(result: Any) -> object:
    class Plugin:
        @hookimpl
        def dermkit_balancers(self) -> Any:
            if isinstance(result, BaseException):
                raise result
            return result

    return Plugin()


def _good_factory() -> str:
    return "made"


GARBAGE: dict[str, Any] = {
    "raises": RuntimeError("hook exploded"),
    "a-list": ["class_weights", "oversample"],
    "a-string": "oops",
    "a-number": 42,
    "pairs": [("x", _good_factory)],
    "non-callable": {"rel_not_callable": 42, "rel_good": _good_factory},
    "bad-name": {3: _good_factory, "": _good_factory},
}


@pytest.fixture
def garbage_plugins() -> Iterator[None]:
    plugins.reset()
    for name, result in GARBAGE.items():
        plugins.register(_plugin(result), name=f"rel-{name}")
    yield
    plugins.reset()


@pytest.mark.usefixtures("garbage_plugins")
def test_each_broken_hook_is_named_and_the_others_keep_working() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = plugins.provided("balancers")
    messages = [str(w.message) for w in caught if w.category is plugins.PluginWarning]
    for name in GARBAGE:
        assert any(f"'rel-{name}'" in m for m in messages), (name, messages)
    joined = "\n".join(messages)
    assert "hook exploded" in joined
    assert "returned a list, not a mapping" in joined and "returned a str" in joined
    assert "the factory of 'rel_not_callable' is a int, not callable" in joined
    assert "the name 3 is not a non-empty string" in joined
    # the good entry of a half-broken plugin, and every built-in, still work
    assert found["rel_good"].factory() == "made"
    assert {"class_weights", "oversample", "augment"} <= set(found)
    assert "rel_not_callable" not in found
    assert set(plugins.broken()) == {f"rel-{name}" for name in GARBAGE}
    # other kinds are untouched
    assert "lfn" in plugins.provided("models")


@pytest.mark.usefixtures("garbage_plugins")
def test_the_cli_lists_plugins_despite_broken_ones(capsys: Any) -> None:
    from dermkit.cli.main import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "class_weights" in out and "rel_good" in out
