"""MkDocs hook: show Sphinx cross-reference roles in docstrings as plain code.

dermkit's docstrings name other objects the Sphinx way (``:class:`~dermkit.core.Dataset```),
which readers of the source and of ``help()`` know. mkdocstrings renders Google-style
docstrings as Markdown, where the role stays visible as ``:class:`` before the code.
This drops the role and, as Sphinx does for a leading ``~``, keeps only the last part
of the dotted name.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:class|meth|func|mod|attr|exc|data|obj|const):<code>(~?)([^<]+)</code>")


def plain(html: str) -> str:
    """``:class:<code>~a.b.C</code>`` becomes ``<code>C</code>``; without ``~``, the full name."""
    return ROLE.sub(lambda m: f"<code>{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}</code>", html)


def on_page_content(html: str, **_: Any) -> str:
    """MkDocs event: applied to every page's HTML."""
    return plain(html)
