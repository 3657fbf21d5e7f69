"""Reading server-rendered pages the way a person does."""

from __future__ import annotations

import re


def page_text(response) -> str:
    """The page's visible text (tags stripped, whitespace collapsed), to assert on sentences."""
    html = re.sub(r"<svg.*?</svg>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
