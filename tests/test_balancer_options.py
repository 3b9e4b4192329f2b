"""``--balancer-option NAME.KEY=VALUE``: balancers with options from the command line."""

from __future__ import annotations

import os

import pytest

from dermkit.cli.recipe import _apply_balancers
from dermkit.errors import ConfigError


def test_options_reach_the_named_balancer() -> None:
    config: dict[str, object] = {"balancers": []}
    _apply_balancers(
        config,
        {
            "balancer": ["class_weights", "augment"],
            "balancer_option": ["augment.strength=2", "augment.recipes=flip,rotate90"],
        },
    )
    augment = config["balancers"][1]  # type: ignore[index]
    assert augment["name"] == "augment"
    assert augment["strength"] == 2
    assert list(augment["recipes"]) == ["flip", "rotate90"]


def test_options_edit_the_base_recipe_balancers_when_no_balancer_is_given() -> None:
    config: dict[str, object] = {"balancers": [{"name": "augment"}]}
    _apply_balancers(config, {"balancer_option": ["augment.strength=3"]})
    assert config["balancers"][0]["strength"] == 3  # type: ignore[index]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("augment.strength=2", "not among the run's balancers"),
        ("strength=2", "not NAME.KEY=VALUE"),
        ("augment.strength", "not NAME.KEY=VALUE"),
    ],
)
def test_bad_balancer_options_are_refused(option: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _apply_balancers(
            {"balancers": []},
            {"balancer": ["class_weights"], "balancer_option": [option]},
        )


def test_a_generator_path_is_stored_absolute() -> None:
    from dermkit.config import absolute_paths

    config = absolute_paths(
        {"balancers": [{"name": "gan_oversampling", "generator": "gans/rare", "target": 0.5}]}
    )
    assert config["balancers"][0]["generator"] == os.path.abspath("gans/rare")
