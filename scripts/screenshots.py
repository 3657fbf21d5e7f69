"""Re-take the screenshots in docs/screenshots/ from the browser tests.

    python scripts/screenshots.py     # needs what ./flowgate test needs: PostgreSQL, Redis,
                                      # Chromium (DATABASE_URL / REDIS_URL honoured)

The pictures come from the tests that check the pages, so they show what the suite verified:
the pending list and the approval page at desktop width and at 390 px
(tests/browser/test_approval_pages.py, the test that checks they fit a phone), the cancel
confirmation and a live update on a phone (tests/browser/test_approval_page_review.py), and
the admin run page of a run with a gate history (tests/browser/test_admin_console.py), and the
console's home, automation editor, gate page and audit list
(tests/browser/test_admin_console_pages.py). The tests write them only when
FLOWGATE_SCREENSHOTS_DIR is set, which this script does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = (
    "tests/browser/test_approval_pages.py"
    "::test_pages_fit_a_phone_and_the_pending_list_links_to_the_gate",
    "tests/browser/test_approval_page_review.py::test_cancel_asks_for_a_confirmation_first",
    "tests/browser/test_approval_page_review.py"
    "::test_another_reviewers_decision_appears_while_the_page_is_open",
    "tests/browser/test_admin_console.py::test_admin_run_page_with_a_gate_history",
    "tests/browser/test_front_door.py::test_the_landing_page_shows_a_reviewer_what_needs_them",
    "tests/browser/test_admin_console_pages.py",
)


def main() -> int:
    env = {**os.environ, "FLOWGATE_SCREENSHOTS_DIR": str(ROOT / "docs" / "screenshots")}
    command = [sys.executable, "-m", "pytest", *TESTS, "-q", "-p", "no:cacheprovider"]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
