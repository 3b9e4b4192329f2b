"""From ``dermkit train`` flags to a recipe (a run's ``config.json``), and back to flags.

One table, :data:`FLAGS`, says which setting of the recipe each flag sets. The same
table serves three uses: building a new recipe (from the defaults, or from a
``--config`` file whose settings the flags then override), editing a saved recipe for
``--resume``, and naming the flag behind every change a resumed run refuses. Every
recipe flag defaults to ``None`` in the parser, so a flag the user typed is told apart
from one left out even when its value equals the default; the defaults themselves come
from the library's own classes (``Training``, the grouped splitter), so the help text
cannot drift from what a run does.
"""

from __future__ import annotations

import argparse
import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dermkit.cli.options import DATASET_OPTION_FLAGS
from dermkit.config import (
    Difference,
    absolute_paths,
    build_component,
    component_config,
    plain,
    resolve_saved_paths,
    show_value,
)
from dermkit.errors import ConfigError
from dermkit.recipe_checks import check_recipe, components_as_objects

Key = tuple[str, ...]
DEFAULT_MODEL = "lfn"


@attrs.frozen
class Flag:
    """A recipe flag: its argparse ``dest``, how it is spelt, and the settings it sets.

    ``keys`` are key paths into the recipe; a refused change is blamed on the given
    flag with the longest key that is a prefix of the changed setting. ``generic``
    flags set ``keys[0]`` to their value as is; the others are applied by the
    component they belong to (dataset, split, model, balancers).
    """

    dest: str
    option: str
    keys: tuple[Key, ...]
    generic: bool = False


FLAGS: tuple[Flag, ...] = (
    Flag("data", "--data", (("data",),)),
    Flag("format", "--format", (("data", "name"),)),
    *(Flag(dest, option, (("data", dest),)) for dest, option, _ in DATASET_OPTION_FLAGS),
    Flag("split_file", "--split-file", (("split",),)),
    Flag("kfold", "--kfold", (("split",), ("split", "k"))),
    Flag("cv", "--cv", (("split",), ("split", "k"))),
    Flag("fold", "--fold", (("split", "fold"),)),
    Flag("val", "--val", (("split", "val"),)),
    Flag("test", "--test", (("split", "test"),)),
    Flag("seed", "--seed", (("training", "seed"), ("split", "seed"))),
    Flag("model", "--model", (("model",),)),
    Flag("model_option", "--model-option", (("model",),)),
    Flag("balancer", "--balancer", (("balancers",),)),
    Flag("balancer_option", "--balancer-option", (("balancers",),)),
    Flag("epochs", "--epochs", (("training", "epochs"),), generic=True),
    Flag("batch_size", "--batch-size", (("training", "batch_size"),), generic=True),
    Flag("optimizer", "--optimizer", (("training", "optimizer"),), generic=True),
    Flag("lr", "--lr", (("training", "learning_rate"),), generic=True),
    Flag("schedule", "--schedule", (("training", "schedule"),), generic=True),
    Flag("early_stopping", "--early-stopping", (("training", "early_stopping"),), generic=True),
    Flag("mixed_precision", "--mixed-precision", (("training", "mixed_precision"),), generic=True),
    Flag("max_minutes", "--max-minutes", (("training", "max_minutes"),), generic=True),
    Flag("feature_cache", "--feature-cache", (("training", "feature_cache"),), generic=True),
    Flag("cache_views", "--cache-views", (("training", "cache_views"),), generic=True),
    Flag("mixup", "--mixup", (("training", "mixup"),), generic=True),
    Flag("distribute", "--distribute", (("training", "distribute"),), generic=True),
    Flag("fine_tune", "--fine-tune", (("training", "stages"),)),
    Flag("fine_tune_epochs", "--fine-tune-epochs", (("training", "stages"),)),
    Flag("fine_tune_lr", "--fine-tune-lr", (("training", "stages"),)),
    Flag("image_size", "--image-size", (("image", "size"),), generic=True),
    Flag("limit", "--limit", (("limit",),), generic=True),
    Flag("strict", "--strict", (("strict",),), generic=True),
    Flag("cache_dir", "--cache-dir", (("cache_dir",),), generic=True),
    Flag("quiet", "--quiet", (("training", "verbose"),)),
)
"""Every flag that sets part of the recipe. ``--out``, ``--resume`` and ``--config``
say where the recipe goes or comes from and are not in it."""

DATASET_DESTS: tuple[str, ...] = tuple(dest for dest, _, _ in DATASET_OPTION_FLAGS)


# --------------------------------------------------------------------------- defaults


def _field_default(cls: type, name: str) -> Any:
    """The default of an attrs field (every field asked about here has a plain default)."""
    return attrs.fields_dict(cls)[name].default


def training_default(name: str) -> Any:
    from dermkit.training.config import Training

    return _field_default(Training, name)


def split_default(name: str) -> Any:
    from dermkit.data.splits import GroupedStratifiedSplit

    return _field_default(GroupedStratifiedSplit, name)


def default_recipe() -> dict[str, Any]:
    """The recipe ``dermkit train`` uses for every setting no flag gives (no dataset)."""
    from dermkit.data.splits import GroupedStratifiedSplit
    from dermkit.run_folder import FORMAT_VERSION
    from dermkit.training.config import Training

    return {
        "format_version": FORMAT_VERSION,
        "data": None,
        "split": component_config(GroupedStratifiedSplit()),
        "model": _normalized("models", {"name": DEFAULT_MODEL}),
        "balancers": [],
        "training": Training().to_config(),
        "evaluator": _normalized("evaluators", {"name": "standard"}),
        "image": {"size": None, "resize_mode": "squash", "interpolation": "lanczos4"},
        "limit": None,
        "strict": False,
        "cache_dir": None,
    }


# --------------------------------------------------------------------------- flags → recipe


def explicit_values(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe flags the user gave, by ``dest`` (every recipe flag defaults to ``None``)."""
    return {
        flag.dest: getattr(args, flag.dest)
        for flag in FLAGS
        if getattr(args, flag.dest, None) is not None
    }


def read_recipe(path: str | Path) -> dict[str, Any]:
    """A recipe from ``--config``: a run's ``config.json`` or the run folder itself."""
    from dermkit.run_folder import CONFIG_FILE, read_saved_config

    source = Path(path)
    folder = source if source.is_dir() else source.parent
    if source.is_dir():
        return read_saved_config(folder)
    if not source.is_file():
        raise ConfigError(
            "no such recipe file",
            where=str(source),
            hint=f"pass a run's {CONFIG_FILE} (or the run folder) to --config",
        )
    import json

    try:
        config = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read the recipe: {error}", where=str(source)) from None
    if not isinstance(config, dict):
        raise ConfigError("the recipe is not a JSON object", where=str(source))
    check_recipe(config, str(source))
    return resolve_saved_paths(config, folder)


def apply_flags(base: Mapping[str, Any] | None, values: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (default: :func:`default_recipe`) with the given flags' settings applied."""
    config = copy.deepcopy(dict(base)) if base is not None else default_recipe()
    components_as_objects(config)
    for apply in (_apply_data, _apply_split, _apply_model, _apply_balancers, _apply_settings):
        apply(config, values)
    return absolute_paths(config)


def _normalized(kind: str, component: Mapping[str, Any]) -> dict[str, Any]:
    """A component config as the component itself would save it (all options, JSON types)."""
    return plain(component_config(build_component(kind, component)))


def _first_option(component: Mapping[str, Any]) -> Any:
    return next((value for key, value in component.items() if key != "name"), None)


def _same_path(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and os.path.abspath(a) == os.path.abspath(b)


def _apply_data(config: dict[str, Any], values: Mapping[str, Any]) -> None:
    """``--data`` and the reader options: edit the base dataset, or open a new one.

    Options given for the base recipe's own dataset (same path, same format) change
    just those options. A different path or format opens that dataset afresh, from
    the dataset flags given now only.
    """
    from dermkit.data.open import open_dataset

    given = {dest: values[dest] for dest in DATASET_DESTS if dest in values}
    path, format = values.get("data"), values.get("format")
    base = config.get("data")
    if path is None and format is None and not given:
        if not isinstance(base, Mapping):
            raise ConfigError(
                "no dataset given",
                where="--data",
                hint="pass --data PATH (or --config RUN/config.json, or --resume --out RUN)",
            )
        return
    new_format = format not in (None, "auto") and (
        not isinstance(base, Mapping) or format != base.get("name")
    )
    same_path = path is None or _same_path(path, _first_option(base or {}))
    if isinstance(base, Mapping) and same_path and not new_format:
        edited = dict(base)
        for dest, value in given.items():
            if dest not in edited:
                raise ConfigError(
                    f"{_option(dest)} does not apply to a {base.get('name')!r} dataset",
                    where=_option(dest),
                    hint=f"its options are {', '.join(k for k in base if k != 'name')}",
                )
            edited[dest] = value
        config["data"] = _normalized("datasets", edited)
        return
    source = path if path is not None else _first_option(base or {})
    if source is None:
        raise ConfigError("no dataset given", where="--data", hint="pass --data PATH")
    dataset = open_dataset(source, format or "auto", **given)
    config["data"] = plain(component_config(dataset))


def _option(dest: str) -> str:
    return next(flag.option for flag in FLAGS if flag.dest == dest)


SPLIT_FIELD_HINTS: Mapping[str, str] = {
    "fold": "--fold picks one fold of a k-fold split: give --kfold K or --cv K as well",
    "test": "with --kfold the test part is the fold chosen by --fold (use --cv K to keep "
    "the grouped split's test part); with --split-file the file decides the parts",
    "val": "with --split-file the file decides the parts",
}


def _apply_split(config: dict[str, Any], values: Mapping[str, Any]) -> None:
    given = [dest for dest in ("split_file", "kfold", "cv") if dest in values]
    if len(given) > 1:
        raise ConfigError(
            f"{' and '.join(_option(d) for d in given)} do not go together",
            where=_option(given[0]),
            hint="--split-file says which image goes to which part; --kfold K tests on "
            "fold I of all images; --cv K keeps the grouped split's test part and "
            "validates on fold I of the rest",
        )
    split = dict(config.get("split") or {"name": "grouped"})
    changed = False
    if "split_file" in values:
        split = {"name": "file", "path": os.path.abspath(values["split_file"])}
        changed = True
    if "kfold" in values:
        if split.get("name") == "kfold":
            split["k"] = values["kfold"]
        else:
            split = {
                "name": "kfold",
                "k": values["kfold"],
                "fold": 0,
                "seed": split.get("seed", split_default("seed")),
                "val": split.get("val", split_default("val")),
            }
        changed = True
    if "cv" in values:
        if split.get("name") == "cv":
            split["k"] = values["cv"]
        else:
            split = {
                "name": "cv",
                "k": values["cv"],
                "fold": 0,
                "seed": split.get("seed", split_default("seed")),
                "val": split.get("val", split_default("val")),
                "test": split.get("test", split_default("test")),
            }
        changed = True
    if changed:
        split = _normalized("splitters", split)
    for dest in ("fold", "val", "test", "seed"):
        if dest not in values:
            continue
        if dest not in split:
            if dest == "seed":  # --seed also seeds training, which every recipe has
                continue
            raise ConfigError(
                f"{_option(dest)} does not apply to a {split.get('name')!r} split",
                where=_option(dest),
                hint=SPLIT_FIELD_HINTS[dest],
            )
        split[dest] = values[dest]
        changed = True
    if changed:
        config["split"] = _normalized("splitters", split)


def parse_option_value(text: str) -> Any:
    """Parse a command-line option value.

    ``512`` -> 512, ``0.5`` -> 0.5, ``512,512`` -> (512, 512), ``none`` -> None,
    ``true`` -> True; anything else stays a string.
    """
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if "," in text:
        return tuple(parse_option_value(part) for part in text.split(",") if part.strip())
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(
                f"model option {pair!r} is not KEY=VALUE", hint="e.g. --model-option dropout=0.5"
            )
        key, value = pair.split("=", 1)
        options[key.strip().replace("-", "_")] = parse_option_value(value)
    return options


def _apply_model(config: dict[str, Any], values: Mapping[str, Any]) -> None:
    if "model" not in values and "model_option" not in values:
        return
    model = dict(config.get("model") or {"name": DEFAULT_MODEL})
    if "model" in values and values["model"] != model.get("name"):
        model = {"name": values["model"]}  # another architecture: its own defaults
    model.update(parse_options(values.get("model_option") or []))
    config["model"] = _normalized("models", model)


def _apply_balancers(config: dict[str, Any], values: Mapping[str, Any]) -> None:
    """``--balancer NAME`` (repeatable) and ``--balancer-option NAME.KEY=VALUE``."""
    if "balancer" not in values and "balancer_option" not in values:
        return
    balancers = [dict(b) for b in config.get("balancers") or []]
    if "balancer" in values:
        names = [n.strip() for item in values["balancer"] for n in item.split(",") if n.strip()]
        balancers = [{"name": name} for name in names if names != ["none"]]
    for name, options in _balancer_options(values.get("balancer_option") or []).items():
        targets = [b for b in balancers if b.get("name") == name]
        if not targets:
            raise ConfigError(
                f"--balancer-option for {name!r}, which is not among the run's balancers",
                where="--balancer-option",
                hint=f"add --balancer {name} (balancers now: "
                f"{', '.join(str(b.get('name')) for b in balancers) or 'none'})",
            )
        for target in targets:
            target.update(options)
    config["balancers"] = [_normalized("balancers", b) for b in balancers]


def _balancer_options(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``["gan_oversampling.target=0.5", ...]`` → ``{"gan_oversampling": {"target": 0.5}}``."""
    options: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        name, dot, rest = pair.partition(".")
        if not dot or "=" not in rest or not name.strip():
            raise ConfigError(
                f"balancer option {pair!r} is not NAME.KEY=VALUE",
                where="--balancer-option",
                hint="e.g. --balancer-option gan_oversampling.generator=gans/rare",
            )
        options.setdefault(name.strip(), {}).update(parse_options([rest]))
    return options


def _set(config: dict[str, Any], key: Key, value: Any) -> None:
    target = config
    for part in key[:-1]:
        target = target.setdefault(part, {})
    target[key[-1]] = value


def _apply_settings(config: dict[str, Any], values: Mapping[str, Any]) -> None:
    from dermkit.training.config import Training

    for flag in FLAGS:
        if flag.generic and flag.dest in values:
            _set(config, flag.keys[0], values[flag.dest])
    if "seed" in values:
        _set(config, ("training", "seed"), values["seed"])
    if values.get("quiet"):
        _set(config, ("training", "verbose"), 2)
    training = Training.from_config(dict(config.get("training") or {}))
    config["training"] = _apply_fine_tune(training, values).to_config()


def _apply_fine_tune(training: Any, values: Mapping[str, Any]) -> Any:
    """``--fine-tune N`` (with ``--fine-tune-epochs``/``--fine-tune-lr``): one later stage."""
    if "fine_tune" not in values:
        for dest in ("fine_tune_epochs", "fine_tune_lr"):
            if dest in values:
                raise ConfigError(
                    f"{_option(dest)} needs --fine-tune",
                    where=_option(dest),
                    hint="--fine-tune N adds a stage that trains the last N backbone layers",
                )
        return training
    first = attrs.evolve(training, stages=())
    return first.then_fine_tune(
        values["fine_tune"],
        epochs=values.get("fine_tune_epochs", FINE_TUNE_EPOCHS),
        learning_rate=values.get("fine_tune_lr"),
    )


FINE_TUNE_EPOCHS = 5
"""Epochs of the ``--fine-tune`` stage unless ``--fine-tune-epochs`` says otherwise."""


# --------------------------------------------------------------------------- recipe → flags


def blame(difference: Difference, values: Mapping[str, Any]) -> str:
    """The flag (as typed) that made ``difference``; the setting's key if no flag did."""
    best: tuple[int, str] | None = None
    for flag in FLAGS:
        if flag.dest not in values:
            continue
        keys = _flag_keys(flag, values)
        for key in keys:
            if difference.key[: len(key)] == key and (best is None or len(key) > best[0]):
                best = (len(key), flag.option)
                if flag.dest == "model_option":
                    best = (len(key), f"--model-option {difference.key[1]}")
    return best[1] if best is not None else difference.dotted


def _flag_keys(flag: Flag, values: Mapping[str, Any]) -> tuple[Key, ...]:
    if flag.dest == "model_option":
        return tuple(("model", key) for key in parse_options(values["model_option"]))
    return flag.keys


def refuse_changes(
    saved: Mapping[str, Any], config: Mapping[str, Any], values: Mapping[str, Any], run_dir: str
) -> None:
    """Raise :class:`ConfigError` naming each given flag that differs from the saved run."""
    from dermkit.run_folder import CONFIG_FILE, refused_changes

    refused = refused_changes(saved, config)
    if not refused:
        return
    parts = []
    for difference in refused:
        text = f"{blame(difference, values)}: saved {show_value(difference.saved)}, given "
        text += show_value(difference.given)
        if difference.key == ("training", "epochs"):
            text += " (epochs can only be raised)"
        parts.append(text)
    raise ConfigError(
        "a resumed run keeps the settings it was started with; " + "; ".join(parts),
        where=str(Path(run_dir) / CONFIG_FILE),
        hint=f"leave these flags out (`dermkit resume {run_dir}` needs none; only --epochs may "
        "be raised and --max-minutes changed), or start a new run from this recipe: "
        f"`dermkit train --config {Path(run_dir) / CONFIG_FILE} ... --out NEW_FOLDER`",
    )


def describe_defaults() -> Mapping[str, str]:
    """``dest -> default`` as the help text shows it."""
    val = split_default("val")
    test = split_default("test")
    return {
        "model": DEFAULT_MODEL,
        "model_option": "the model's own",
        "balancer": "none",
        "epochs": str(training_default("epochs")),
        "batch_size": str(training_default("batch_size")),
        "optimizer": str(training_default("optimizer")),
        "lr": f"{training_default('learning_rate'):g}",
        "schedule": str(training_default("schedule")),
        "early_stopping": "off",
        "mixed_precision": "off",
        "max_minutes": "no limit",
        "feature_cache": str(training_default("feature_cache")),
        "distribute": str(training_default("distribute")),
        "fine_tune": "off: one stage",
        "fine_tune_epochs": str(FINE_TUNE_EPOCHS),
        "fine_tune_lr": "a tenth of --lr",
        "image_size": "the model's",
        "val": f"{val:g}",
        "test": f"{test:g}",
        "seed": str(split_default("seed")),
        "kfold": "off: one grouped train/val/test split",
        "cv": "off: one grouped train/val/test split",
        "fold": "0",
        "limit": "all images",
        "strict": "off: skip and report bad inputs",
        "cache_dir": "$DERMKIT_CACHE or ~/.cache/dermkit/images",
    }
