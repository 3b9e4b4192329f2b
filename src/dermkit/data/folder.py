"""One sub-folder per class: the layout most image datasets are shipped or sorted in."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import ClassVar

import attrs

from dermkit.core import LoadedDataset, Record
from dermkit.data.common import (
    ProblemLog,
    class_index,
    finish,
    is_hidden,
    is_image_name,
    require_dir,
    to_names,
    to_optional_str,
    to_str,
)
from dermkit.errors import ConfigError, DataError


def _check_pattern(
    instance: object, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is None:
        return
    try:
        compiled = re.compile(value)
    except re.error as error:
        raise ConfigError(
            f"group_pattern {value!r} is not a valid regular expression: {error}",
            where="dataset 'folder'",
        ) from None
    if compiled.groups < 1:
        raise ConfigError(
            f"group_pattern {value!r} has no capturing group",
            where="dataset 'folder'",
            hint=r"put the group id in parentheses, e.g. '^(HAM_\d+)_'",
        )


@attrs.frozen(slots=True)
class ImageFolder:
    """Images in ``root/<class name>/...`` (sub-folders of a class folder included).

    ``classes`` fixes the class order (and so the label numbers); by default it is the
    sorted sub-folder names. Images in a folder that is not one of ``classes``, and
    files without an image suffix, are reported, not silently dropped; hidden files
    (``.DS_Store``) and files directly in ``root`` are ignored.

    The group (the unit a split keeps together) is the file stem, unless
    ``group_pattern`` is given: a regular expression searched in the file name whose
    first capturing group is the group id, e.g. ``r"^(HAM_\\d+)_"`` for files named
    ``HAM_0000118_ISIC_0027419.jpg``. A regular expression rather than a function so
    the option survives a JSON round-trip of the configuration.

    ``verify`` decodes every image once at load time to report corrupt files.
    """

    name: ClassVar[str] = "folder"

    root: str = attrs.field(converter=to_str)
    classes: tuple[str, ...] | None = attrs.field(default=None, converter=to_names)
    group_pattern: str | None = attrs.field(
        default=None, converter=to_optional_str, validator=_check_pattern
    )
    verify: bool = True

    def load(self, *, strict: bool = False) -> LoadedDataset:
        root = require_dir(self.root, "image folder")
        with os.scandir(root) as entries:
            folders = sorted(e.name for e in entries if e.is_dir() and not is_hidden(e.name))
        names = self.classes if self.classes is not None else tuple(folders)
        if not names:
            raise DataError(
                "no class sub-folders found",
                where=str(root),
                hint="put each class's images in a sub-folder named after the class",
            )
        classes = class_index(names, where=f"{root} (classes)")
        pattern = re.compile(self.group_pattern) if self.group_pattern else None
        log = ProblemLog(strict)
        records: list[Record] = []
        found = 0
        for folder in folders:
            for path in _walk(root / folder):
                found += 1
                source = str(path)
                if folder not in classes:
                    log.add(
                        source,
                        f"folder {folder!r} is not one of the classes ({', '.join(classes)})",
                        "move the image into a class folder, or add the class to `classes`",
                    )
                    continue
                if not is_image_name(path.name):
                    log.add(
                        source,
                        f"not an image file (suffix {path.suffix or 'none'!r})",
                        "move it out of the class folders, or save it as JPEG/PNG",
                    )
                    continue
                if pattern is None:
                    group = path.stem
                else:
                    match = pattern.search(path.name)
                    group = match.group(1) if match and match.group(1) else ""
                    if not group:
                        log.add(
                            source,
                            f"file name does not match group_pattern {self.group_pattern!r}",
                            "rename the file or fix group_pattern",
                        )
                        continue
                records.append(Record(path=path, label=classes.index(folder), group=group))
        return finish(
            records=records,
            classes=classes,
            log=log,
            found=found,
            source=str(root),
            verify=self.verify,
            class_sources={name: str(root / name) for name in classes},
        )


def _walk(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder``, in a stable (sorted) order."""
    out: list[Path] = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not is_hidden(d))
        base = Path(current)
        out.extend(base / f for f in sorted(files) if not is_hidden(f))
    return out
