"""Check a built site: every internal link, image, script and stylesheet must resolve.

``mkdocs build --strict`` checks the links written in the Markdown sources; this
checks the HTML that comes out, which also covers what themes, plugins and hooks
generate (navigation, the API reference, the generated CLI reference), and the
``#anchors`` of links into other pages. External links (``https:``, ``mailto:``) are
not followed: CI has no network and their targets are not ours to keep. Usage::

    mkdocs build --site-dir site && python docs/tools/check_site.py site
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

_REFERENCES = {"a": "href", "link": "href", "img": "src", "script": "src", "source": "src"}


class _Page(HTMLParser):
    """The ids a page defines and the references it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.references: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a" and values.get("name"):
            self.ids.add(str(values["name"]))
        target = values.get(_REFERENCES.get(tag, ""))
        if target:
            self.references.append(target)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def _target_file(site: Path, page: Path, path: str) -> Path:
    base = site if path.startswith("/") else page.parent
    target = (base / unquote(path.lstrip("/"))).resolve()
    return target / "index.html" if target.is_dir() or path.endswith("/") else target


def check_site(site: Path) -> list[str]:
    """Every broken internal reference in the HTML files under ``site``, one line each."""
    site = site.resolve()
    pages = {path: _parse(path) for path in sorted(site.rglob("*.html"))}
    problems: list[str] = []
    for path, page in pages.items():
        where = path.relative_to(site).as_posix()
        for reference in page.references:
            parts = urlsplit(reference)
            if parts.scheme or parts.netloc or reference.startswith("data:"):
                continue  # external, mailto:, data: URLs
            target = _target_file(site, path, parts.path) if parts.path else path
            if not target.is_file():
                problems.append(f"{where}: {reference} does not exist")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{where}: {reference} has no anchor #{parts.fragment}")
    return problems


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1 or not Path(arguments[0]).is_dir():
        print("usage: python docs/tools/check_site.py SITE_DIR", file=sys.stderr)
        return 2
    problems = check_site(Path(arguments[0]))
    for problem in problems:
        print(problem)
    pages = sum(1 for _ in Path(arguments[0]).rglob("*.html"))
    print(f"{len(problems)} broken internal references in {pages} pages", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
