"""The embedded default (no DATABASE_URL/REDIS_URL: SQLite and a filesystem broker) serves the
API and runs flows with a real worker: the README's run command depends on it, SQLite lacks some
PostgreSQL lookups, and concurrent writers on one SQLite file must wait rather than fail."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def embedded_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of `./flowgate run` with its state in `var_dir`."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local", FLOWGATE_VAR_DIR=str(var_dir), DEBUG="true"
    )
    env.update(extra)
    return env


def python(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_every_endpoint_answers_on_sqlite(tmp_path):
    env = embedded_env(tmp_path)

    def run(*args: str) -> str:
        return python(env, *args)

    run("manage.py", "migrate", "-v0")
    run("manage.py", "seed_demo")
    lines = run("-m", "tests.support.embedded_smoke").splitlines()
    calls = [line for line in lines if line.split(" ")[0] in {"GET", "POST"}]
    assert len(calls) == 22, lines
    assert [line for line in calls if not line.endswith((" 200", " 201", " 202"))] == []
    assert "POST /api/hooks/TOKEN 202" in lines
    assert "FIRED 1" in lines  # a due schedule starts its run on SQLite too
    assert (tmp_path / "flowgate.sqlite3").exists()


def run_statuses(database: Path, run_ids: list[str]) -> dict[str, str]:
    with sqlite3.connect(database, timeout=30) as db:
        rows = db.execute(
            f"SELECT run_id, status FROM automations_run WHERE run_id IN "
            f"({','.join('?' * len(run_ids))})",
            run_ids,
        ).fetchall()
    return dict(rows)


def test_six_simultaneous_runs_complete_on_sqlite_without_a_sweep(tmp_path):
    """Issue 15: six back-to-back run_now calls left runs `queued` with `database is locked` in
    the worker log until a sweep re-sent them. A worker with beat (as `./flowgate run` starts
    it, four processes) must finish all six; the sweep interval is an hour, so no sweep runs."""
    env = embedded_env(tmp_path, FLOWGATE_SWEEP_INTERVAL_S="3600")
    python(env, "manage.py", "migrate", "-v0")
    python(env, "manage.py", "seed_demo")
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "config", "worker", "-B"),
                *("--pool=prefork", "--concurrency=4", "--loglevel=info"),
                *("--schedule", str(tmp_path / "celerybeat-schedule")),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        run_ids = python(env, "-m", "tests.support.embedded_runs").split()
        assert len(run_ids) == 6
        deadline = time.monotonic() + 90
        statuses = run_statuses(tmp_path / "flowgate.sqlite3", run_ids)
        while time.monotonic() < deadline and set(statuses.values()) != {"completed"}:
            assert worker.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.5)
            statuses = run_statuses(tmp_path / "flowgate.sqlite3", run_ids)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    log = log_path.read_text()
    assert set(statuses.values()) == {"completed"}, (statuses, log[-4000:])
    assert "database is locked" not in log
    assert "Task automations.sweep_runs[" not in log  # nothing was rescued by a sweep
