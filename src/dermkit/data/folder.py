"""One sub-folder per class: the layout most image datasets are shipped or sorted in."""

from __future__ import annotations

import os
import re
from typing import ClassVar

import attrs

from dermkit.core import LoadedDataset, Record
from dermkit.data.checks import FOLDER_GROUPING_WARNING, refuse_rare_labels
from dermkit.data.common import (
    FolderWalker,
    ProblemLog,
    class_index,
    finish,
    is_hidden,
    is_image_name,
    report_entry,
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
    sorted sub-folder names. Every file under ``root`` is either used or reported:
    images in a folder that is not one of ``classes`` are skipped; files without an
    image suffix, hidden files (``.DS_Store``), hidden folders and files directly in
    ``root`` (a README) are reported as ignored. Linked folders and files are followed
    once (see :class:`~dermkit.data.common.FolderWalker`). Without ``classes``, a
    class folder with only a handful of images beside much larger ones is refused as a
    likely typo (:func:`~dermkit.data.checks.refuse_rare_labels`).

    The group (the unit a split keeps together) is the file stem, unless
    ``group_pattern`` is given: a regular expression searched in the file name whose
    first capturing group is the group id, e.g. ``r"^(HAM_\\d+)_"`` for files named
    ``HAM_0000118_ISIC_0027419.jpg``. A regular expression rather than a function so
    the option survives a JSON round-trip of the configuration. Without it the loaded
    dataset carries a warning that the split cannot be grouped by lesion.

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
            folders = sorted(e.name for e in entries if _is_dir(e) and not is_hidden(e.name))
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
        images_seen: dict[str, list[str]] = {name: [] for name in folders}
        found = 0
        for entry in FolderWalker().walk(root):
            found += 1
            path = entry.path
            source = str(path)
            relative = path.relative_to(root)
            item = relative.as_posix()
            folder = relative.parts[0]
            if entry.status != "file":
                report_entry(log, entry, item)
                continue
            if len(relative.parts) == 1:
                log.ignore(
                    source,
                    "not in a class folder, ignored",
                    "only files inside the class folders are read",
                    kind="files beside the class folders, ignored",
                    item=item,
                )
                continue
            if not is_image_name(path.name):
                log.ignore(
                    source,
                    f"not an image file (suffix {path.suffix or 'none'!r}), ignored",
                    "only files with an image suffix are read; save images as JPEG or PNG",
                    kind="non-image files, ignored",
                    item=item,
                )
                continue
            images_seen.setdefault(folder, []).append(item)
            if folder not in classes:
                log.add(
                    source,
                    f"folder {folder!r} is not one of the classes ({', '.join(classes)})",
                    "move the image into a class folder, or add the class to `classes`",
                    kind=f"images in folder {folder!r}, which is not one of the classes",
                    item=item,
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
                        kind=f"file names not matching group_pattern {self.group_pattern!r}",
                        item=item,
                    )
                    continue
            records.append(Record(path=path, label=classes.index(folder), group=group))
        if self.classes is None:
            refuse_rare_labels(
                {name: len(images_seen[name]) for name in folders},
                where=str(root),
                unit="image",
                examples=images_seen,
                what="class folder",
                verb="holds",
            )
        return finish(
            records=records,
            classes=classes,
            log=log,
            found=found,
            source=str(root),
            verify=self.verify,
            class_sources={name: str(root / name) for name in classes},
            warnings=() if pattern is not None else (FOLDER_GROUPING_WARNING,),
        )


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # a linked class folder counts
    except OSError:
        return False
