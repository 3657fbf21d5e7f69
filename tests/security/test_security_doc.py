"""docs/security.md shows the authorisation matrices exactly as tests/security/authz_table.py
and tests/security/session_table.py define them."""

from __future__ import annotations

from scripts.render_security_doc import DOC, render


def test_docs_security_md_is_rendered_from_the_table():
    current = DOC.read_text()
    assert render(current) == current, (
        "docs/security.md is out of date with tests/security/authz_table.py: "
        "run python scripts/render_security_doc.py"
    )
