"""MkDocs hook: the options of every built-in component, generated from their attrs fields.

``docs/reference/configuration.md`` holds the marker ``<!-- dermkit-config-reference -->``;
at build time this hook replaces it with one table per registered component of the
built-in plugins (``folder``, ``resnet50``, ``class_weights``, ...) and for ``Training``
and the image settings: option, JSON type, default. Components are attrs classes whose
fields *are* their options (that is how ``config.json`` round-trips), so the fields are
the schema and the page cannot drift from the code.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

MARKER = "<!-- dermkit-config-reference -->"
PAGE = "reference/configuration.md"

_JSON = {str: "string", int: "integer", float: "number", bool: "true/false"}


def json_type(annotation: Any) -> str:
    """How a field's Python type is written in ``config.json``."""
    if annotation in _JSON:
        return _JSON[annotation]
    if annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f'`"{value}"`' for value in arguments)
    if origin in (tuple, list):
        inner = {json_type(a) for a in arguments if a is not Ellipsis}
        return f"list of {' or '.join(sorted(inner))}" if inner else "list"
    if arguments:  # a union, e.g. ``int | None``
        return " or ".join(json_type(a) for a in arguments)
    return str(getattr(annotation, "__name__", annotation))


def _default(field: Any) -> str:
    import attrs

    if field.default is attrs.NOTHING:
        return "**required**"
    if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
        return "(computed)"
    value = list(field.default) if isinstance(field.default, tuple) else field.default
    import json

    return f"`{json.dumps(value)}`"


def options_table(cls: type) -> list[str]:
    """A Markdown table of the init fields of the attrs class ``cls``."""
    import attrs

    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation naming a type only imported for type checkers
        hints = {}
    fields = [field for field in attrs.fields(cls) if field.init]
    if not fields:
        return ["No options.", ""]
    lines = ["| option | type | default |", "|---|---|---|"]
    for field in fields:
        kind = json_type(hints[field.name]) if field.name in hints else f"`{field.type}`"
        lines.append(f"| `{field.name}` | {kind} | {_default(field)} |")
    return [*lines, ""]


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.split("\n\n")[0].replace("\n", " ")


def render() -> str:
    from dermkit import hookspecs, plugins
    from dermkit.data.images import ImageSettings
    from dermkit.training.config import Training

    lines: list[str] = []
    for kind in hookspecs.KINDS:
        built_in = {
            name: item
            for name, item in sorted(plugins.provided(kind).items())
            if item.plugin in plugins.DEFAULT_PLUGINS
        }
        lines += [f"### {kind.capitalize()}", ""]
        for name, item in built_in.items():
            lines += [f'#### `"name": "{name}"`', ""]
            summary = _summary(item.factory)
            lines += [f"{summary} (`{item.factory.__module__}.{item.factory.__name__}`)", ""]
            lines += options_table(item.factory)
    lines += ["### Training", "", _summary(Training), "", *options_table(Training)]
    lines += ["### Image", "", _summary(ImageSettings), "", *options_table(ImageSettings)]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs event: fill in the marker on the configuration reference page."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost its marker {MARKER}; its option tables would be empty")
    return markdown.replace(MARKER, render())
