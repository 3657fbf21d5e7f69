"""The Celery worker harness itself: a real worker process, its queue, kill() and stop()."""

from __future__ import annotations

import os
import time

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from governance.models import Organization
from tests.support import wait_for
from tests.support.tasks import create_organization, record_setting
from tests.support.worker import database_url, delete_queue, require_redis_url, session_queue

pytestmark = pytest.mark.django_db(transaction=True)


def org(slug: str) -> Organization:
    return wait_for(lambda: Organization.objects.get(slug=slug), timeout=15)


def test_task_sent_from_the_test_runs_in_the_worker_process(celery_worker):
    create_organization.delay("from-worker")

    row = org("from-worker")
    worker_pid = int(row.name.removeprefix("pid:"))
    assert worker_pid != os.getpid()
    assert worker_pid in celery_worker.group_pids()  # a prefork child of our worker
    assert "tests.support.tasks.create_organization" in celery_worker.log()
    assert celery_worker.startup_seconds is not None


def test_worker_uses_the_test_database_test_settings_and_extra_env(celery_worker_factory):
    celery_worker_factory(concurrency=1, env={"FLOWGATE_STALE_AFTER_S": "7"})

    for setting in ("FLOWGATE_STALE_AFTER_S", "SETTINGS_MODULE", "CELERY_TASK_DEFAULT_QUEUE"):
        record_setting.delay(setting.lower().replace("_", "-"), setting)

    assert org("flowgate-stale-after-s").name == "7"
    assert org("settings-module").name == "config.settings.test"
    assert org("celery-task-default-queue").name == session_queue()
    # The rows are in the test database this test reads: pytest-django's, not DATABASE_URL's.
    assert connection.settings_dict["NAME"].startswith("test_")


def test_kill_takes_down_the_whole_process_group(celery_worker):
    create_organization.delay("busy", sleep_after=60)  # a prefork child stays busy
    org("busy")
    pids = celery_worker.group_pids()
    assert len(pids) >= 1 + celery_worker.concurrency  # main process and pool children

    celery_worker.kill()

    assert celery_worker.group_pids() == []
    assert not celery_worker.alive
    for pid in pids:  # none is left running (a zombie awaiting its reaper does not count)
        stat = f"/proc/{pid}/stat"
        if os.path.exists(stat):
            with open(stat) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            assert state in ("Z", "X"), f"pid {pid} still running after kill()"


def test_stop_is_a_clean_shutdown(celery_worker):
    assert celery_worker.stop() == 0
    assert celery_worker.group_pids() == []


def test_a_fresh_worker_after_a_killed_one_picks_up_new_tasks(celery_worker_factory):
    first = celery_worker_factory(concurrency=1)
    first.kill()

    celery_worker_factory(concurrency=1)
    create_organization.delay("after-kill")

    assert org("after-kill")


def test_leftover_messages_are_purged_before_a_worker_starts(celery_worker_factory):
    create_organization.delay("leftover")  # nobody consumes the queue yet

    celery_worker_factory(concurrency=1)
    create_organization.delay("marker")

    org("marker")  # concurrency 1: the leftover would have run before the marker
    assert not Organization.objects.filter(slug="leftover").exists()


def test_worker_consumes_only_this_sessions_queue(celery_worker):
    """Queue per pytest process: what keeps parallel sessions and xdist workers apart.

    Every pytest process (each xdist worker `gwN` is one) picks `test-<pid>-<random>` in
    tests/conftest.py, publishes there and starts its workers with `-Q` that queue only; so a
    worker never receives another process's tasks (which would also point at another test
    database, `test_<name>_gwN`).
    """
    queue = session_queue()
    assert queue.startswith(f"test-{os.getpid()}-")
    assert queue == settings.CELERY_TASK_DEFAULT_QUEUE == celery_app.conf.task_default_queue

    replies = celery_app.control.inspect([celery_worker.name], timeout=5).active_queues()
    assert [q["name"] for q in replies[celery_worker.name]] == [queue]

    other = f"{queue}-other-session"
    try:
        create_organization.apply_async(("elsewhere",), queue=other)
        create_organization.delay("here")
        org("here")
        time.sleep(0.5)
        assert not Organization.objects.filter(slug="elsewhere").exists()
    finally:
        delete_queue(other)


@pytest.mark.django_db(transaction=False)
def test_missing_redis_url_fails_with_instructions(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(pytest.fail.Exception, match=r"REDIS_URL is not set.*\./flowgate test"):
        require_redis_url()


def test_database_url_round_trips_through_django_environ():
    import environ

    settings_dict = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "test_flowgate_gw1",
        "USER": "fg user",
        "PASSWORD": "p@ss:w/rd",
        "HOST": "db.internal",
        "PORT": 6543,
        "OPTIONS": {"sslmode": "require", "options": "-c x=y"},
    }
    parsed = environ.Env.db_url_config(database_url(settings_dict))
    assert {k: parsed[k] for k in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")} == {
        **{k: settings_dict[k] for k in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST")},
        "PORT": 6543,
    }
    assert parsed["OPTIONS"] == {"sslmode": "require"}

    socket_url = database_url({**settings_dict, "HOST": "/var/run/postgresql", "PASSWORD": ""})
    assert environ.Env.db_url_config(socket_url)["HOST"] == "/var/run/postgresql"
