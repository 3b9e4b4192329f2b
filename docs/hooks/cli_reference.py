"""MkDocs hook: the command-line reference, generated from dermkit's own argparse parsers.

``docs/reference/cli.md`` holds the marker ``<!-- dermkit-cli-reference -->``; at build
time this hook replaces it with one section per command (``dermkit train``,
``dermkit data inspect``, ...) listing its usage and every argument with its default,
choices and help, read from :func:`dermkit.cli.main.build_parser`. A new option or
command therefore appears in the site without anyone editing a page, and a removed
one disappears: the reference cannot drift from the code.

argparse keeps its parsers' structure in underscore attributes (``_actions``,
``_action_groups``); reading them is what every argparse documentation tool does.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

MARKER = "<!-- dermkit-cli-reference -->"
PAGE = "reference/cli.md"
USAGE_WIDTH = 70


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """Every command below ``parser`` as (words after ``dermkit``, parser, one-line help)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        seen: set[int] = set()
        for name, sub in action.choices.items():
            if id(sub) in seen:  # an alias of a command already listed
                continue
            seen.add(id(sub))
            yield (*path, name), sub, helps.get(name, "")
            yield from commands(sub, (*path, name))


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _text(text: str) -> str:
    """Help text as literal Markdown: no HTML tags, no reference links, no line breaks."""
    for raw, escaped in (("<", "&lt;"), (">", "&gt;"), ("[", "\\["), ("]", "\\]")):
        text = text.replace(raw, escaped)
    return text.replace("\n", " ")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _names(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest.upper()}`"
    if action.nargs == 0:
        return ", ".join(f"`{option}`" for option in action.option_strings)
    metavar = action.metavar or (
        "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper()
    )
    return ", ".join(f"`{option} {metavar}`" for option in action.option_strings)


def _details(action: argparse.Action) -> str:
    parts: list[str] = []
    if action.help and action.help is not argparse.SUPPRESS:
        parts.append(_text(action.help % {"default": action.default, "prog": ""}))
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        parts.append("one of: " + ", ".join(f"`{choice}`" for choice in action.choices))
    if isinstance(action, argparse._AppendAction):
        parts.append("repeatable")
    if action.required and action.option_strings:
        parts.append("**required**")
    default = action.default
    if (
        action.option_strings
        and action.nargs != 0
        and default not in (None, argparse.SUPPRESS, [], "")
        and "default" not in (action.help or "")
    ):
        parts.append(f"default: `{default}`")
    return "; ".join(parts)


def _arguments_table(parser: argparse.ArgumentParser) -> list[str]:
    lines: list[str] = []
    for group in parser._action_groups:
        actions = [
            action
            for action in group._group_actions
            if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
            and action.help is not argparse.SUPPRESS
        ]
        if not actions:
            continue
        lines += [f"**{group.title[:1].upper()}{group.title[1:]}**" if group.title else "", ""]
        lines += ["| argument | meaning |", "|---|---|"]
        lines += [f"| {_names(a)} | {_cell(_details(a))} |" for a in actions]
        lines.append("")
    return lines


def render(parser: argparse.ArgumentParser) -> str:
    """The Markdown reference of every command of ``parser`` (``dermkit``'s root parser)."""
    lines: list[str] = []
    for path, sub, summary in commands(parser):
        lines += [f"## `dermkit {' '.join(path)}`", ""]
        text = sub.description or summary
        if text:
            lines += [_text(text), ""]
        lines += ["```text", _usage(sub), "```", ""]
        lines += _arguments_table(sub)
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs event: fill in the marker on the command-line reference page."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost its marker {MARKER}; the CLI reference would be empty")
    from dermkit.cli.main import build_parser

    return markdown.replace(MARKER, render(build_parser()))
