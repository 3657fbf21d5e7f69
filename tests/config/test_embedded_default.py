"""The embedded default (no DATABASE_URL/REDIS_URL: SQLite and a filesystem broker) serves the
API: the README's run command depends on it, and SQLite lacks some PostgreSQL lookups."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_endpoint_answers_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local", FLOWGATE_VAR_DIR=str(tmp_path), DEBUG="true"
    )

    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    run("manage.py", "migrate", "-v0")
    run("manage.py", "seed_demo")
    lines = run("-m", "tests.support.embedded_smoke").splitlines()
    calls = [line for line in lines if line.split(" ")[0] in {"GET", "POST"}]
    assert len(calls) == 16, lines
    assert [line for line in calls if not line.endswith((" 200", " 201"))] == []
    assert (tmp_path / "flowgate.sqlite3").exists()
