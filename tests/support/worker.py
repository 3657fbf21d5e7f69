"""A real Celery worker process for tests: the suite's PostgreSQL test database and Redis.

Nothing runs eagerly: `CeleryWorker` starts `python -m celery -A config worker` as a subprocess
(prefork pool, its own session and process group), pointed at the database pytest-django
created and at REDIS_URL, consuming one queue that belongs to this test process only.

Queue isolation: `configure_test_queue()` (called by tests/conftest.py at import, once per
pytest process, so once per xdist worker) picks `test-<pid>-<random>` and makes the test
process publish there (`settings.CELERY_TASK_DEFAULT_QUEUE` and the Celery app's
`task_default_queue`); every worker it starts gets the same name via FLOWGATE_CELERY_QUEUE and
`-Q`. Two sessions, or two xdist workers, sharing one Redis database therefore never consume
each other's tasks; they also use different test databases (pytest-django's `_gwN` suffix).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlencode

from django.conf import settings

QUEUE_ENV = "FLOWGATE_CELERY_QUEUE"
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INCLUDE = ("tests.support.tasks",)

_queue: str | None = None


def configure_test_queue() -> str:
    """Give this pytest process its own queue and publish to it; idempotent. Returns the name."""
    global _queue
    if _queue is None:
        _queue = f"test-{os.getpid()}-{secrets.token_hex(3)}"
    from config.celery import app

    os.environ[QUEUE_ENV] = _queue  # for anything that starts a subprocess with our environment
    settings.CELERY_TASK_DEFAULT_QUEUE = _queue
    # Routing reads conf.task_default_queue on every send, so this holds even if the app's
    # configuration was already loaded.
    app.conf.task_default_queue = _queue
    return _queue


def session_queue() -> str:
    """This pytest process's queue (see `configure_test_queue`)."""
    return configure_test_queue()


def require_redis_url() -> str:
    """REDIS_URL of this test run; fails the test with instructions when it is missing."""
    import pytest

    url = os.environ.get("REDIS_URL", "")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        pytest.fail(
            "Celery worker tests need Redis: REDIS_URL is "
            + (f"{url!r}" if url else "not set")
            + ". Run the suite with ./flowgate test (it finds or starts PostgreSQL and Redis), "
            "or set REDIS_URL=redis://HOST:PORT/DB yourself.",
            pytrace=False,
        )
    return url


def pin_test_broker(url: str) -> None:
    """Make this process publish to `url` (REDIS_URL), the broker its workers consume.

    Settings already say so; this undoes a test that assigned `app.conf.broker_url` directly and
    left the wrong value behind, which would send every later task to a dead broker.
    """
    from config.celery import app

    if app.conf.broker_url != url:
        app.conf.broker_url = url


def database_url(settings_dict: Mapping) -> str:
    """A postgres:// URL (as django-environ parses it) for a connection's settings_dict."""
    if settings_dict["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError(
            f"a worker process needs PostgreSQL, not {settings_dict['ENGINE']}: set DATABASE_URL "
            "(./flowgate test does)"
        )
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(str(settings_dict.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or ""
    port = str(settings_dict.get("PORT") or "")
    # Plain connection options from the original URL (sslmode=...) go along; `options` is set
    # by config.settings.test itself.
    options = {
        key: value
        for key, value in (settings_dict.get("OPTIONS") or {}).items()
        if key != "options" and isinstance(value, str | int)
    }
    name = quote(settings_dict["NAME"], safe="")
    if host.startswith("/"):
        # A Unix socket directory: django-environ reads it from the path, and the port (which
        # names the socket file) then travels as a connection option.
        if port:
            options["port"] = port
        location = f"{auth}/{quote(host)}/{name}"
    else:
        location = f"{auth}{host}" + (f":{port}" if port else "") + f"/{name}"
    query = f"?{urlencode(options)}" if options else ""
    return f"postgres://{location}{query}"


def purge_queue(queue: str) -> int:
    """Drop every message of `queue` on the broker, waiting or taken by a killed worker.

    Call it only while no worker consumes `queue`. Returns how many were waiting.
    """
    from config.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        count = channel.queue_purge(queue) or 0
        _drop_unacked(channel, queue)
    return count


def _drop_unacked(channel, queue: str) -> None:
    """Forget messages of `queue` that a SIGKILLed worker had taken but not acknowledged.

    With acks_late, kombu's Redis transport keeps them in its `unacked` hash and puts them back
    in their queue after `visibility_timeout` (an hour), long after this test's worker is gone.
    """
    key = getattr(channel, "unacked_key", None)
    if key is None:  # not the Redis transport
        return
    client = channel.client
    tags = []
    for tag, raw in client.hscan_iter(key):
        try:
            routing_key = json.loads(raw)[2]
        except (ValueError, IndexError, TypeError):
            continue
        if routing_key == queue:
            tags.append(tag)
    if tags:
        client.pipeline().hdel(key, *tags).zrem(channel.unacked_index_key, *tags).execute()


def delete_queue(queue: str) -> None:
    """Remove `queue` and its binding from the broker (end of session: nothing uses it any more)."""
    from kombu import Exchange, Queue

    from config.celery import app

    purge_queue(queue)
    with app.connection_for_write() as conn:
        bound = Queue(queue, Exchange(queue, "direct"), routing_key=queue)(conn.default_channel)
        bound.declare()  # makes the channel know the binding, so delete() removes it too
        bound.delete()


class CeleryWorker:
    """One `celery worker` subprocess for a test; see the module docstring.

        worker = CeleryWorker(concurrency=1, env={"FLOWGATE_STALE_AFTER_S": "2"}).start()
        ...
        worker.kill()   # SIGKILL the whole process group (the "crashed worker" case)
        worker.stop()   # or: warm shutdown (TERM), SIGKILL after `timeout`

    The test database must already exist and the data the worker needs must be committed:
    use it from `@pytest.mark.django_db(transaction=True)` tests (the fixtures do).
    """

    _counter = 0

    def __init__(
        self,
        *,
        concurrency: int = 2,
        env: Mapping[str, str] | None = None,
        queue: str | None = None,
        include: tuple[str, ...] = DEFAULT_INCLUDE,
        loglevel: str = "info",
        log_path: Path | str | None = None,
        ready_timeout: float = 30.0,
        beat: bool = False,
    ) -> None:
        CeleryWorker._counter += 1
        self.queue = queue or session_queue()
        self.concurrency = concurrency
        self.extra_env = {key: str(value) for key, value in (env or {}).items()}
        self.include = include
        self.loglevel = loglevel
        self.ready_timeout = ready_timeout
        # With beat embedded (`-B`, as `./flowgate run` starts it): the periodic tasks of
        # settings.CELERY_BEAT_SCHEDULE are sent to this worker's queue.
        self.beat = beat
        self.name = f"{self.queue}-{CeleryWorker._counter}@{socket.gethostname()}"
        self._own_log = log_path is None
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="flowgate-celery-worker-", suffix=".log")
            os.close(fd)
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=prefork",
            f"--concurrency={self.concurrency}",
            f"--loglevel={self.loglevel}",
            "-Q",
            self.queue,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-n",
            self.name,
        ]
        for module in self.include:
            cmd += ["-I", module]
        if self.beat:
            cmd += ["-B", "--schedule", str(self.log_path.with_suffix(".beat-schedule"))]
        return cmd

    def environment(self) -> dict[str, str]:
        from django.db import connection

        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.test",
            DATABASE_URL=database_url(connection.settings_dict),
            REDIS_URL=require_redis_url(),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        env[QUEUE_ENV] = self.queue  # never overridable: the worker must consume our queue
        return env

    def start(self, *, purge: bool = True) -> CeleryWorker:
        """Start the worker; return once it consumes its queue (else raise, with its log).

        `purge` first drops whatever waits in the queue, so leftovers of an earlier test do not
        run now; pass False when another worker on this queue is still running.
        """
        if self.process is not None:
            raise RuntimeError("this CeleryWorker was already started; create a new one")
        env = self.environment()
        if purge:
            purge_queue(self.queue)
        began = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: kill() reaches prefork children
            )
        ready = f"{self.name} ready."
        deadline = began + self.ready_timeout
        while ready not in self.log():
            if self.process.poll() is not None:
                self._fail(f"exited with status {self.process.returncode} before it was ready")
            if time.monotonic() >= deadline:
                self.kill()
                self._fail(f"was not ready within {self.ready_timeout:g}s")
            time.sleep(0.05)
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """Warm shutdown (SIGTERM: running tasks finish); SIGKILL the group after `timeout`."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        self.kill()  # also reaps stragglers of the group, if any
        return self.process.returncode

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the worker and all its prefork children at once, and wait until they are gone."""
        if self.process is None:
            return
        if self.process.poll() is not None and not self.group_pids():
            return  # already gone: do not signal a group id the system may have reused
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout)
        deadline = time.monotonic() + timeout
        while self.group_pids():
            if time.monotonic() >= deadline:
                raise RuntimeError(f"worker process group {self.process.pid} survived SIGKILL")
            time.sleep(0.02)

    def close(self) -> None:
        """Stop the worker if running and delete the log file if this object created it."""
        self.stop()
        if self._own_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> CeleryWorker:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- inspection -----------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def group_pids(self) -> list[int]:
        """Live (non-zombie) processes in the worker's process group: main and pool children."""
        if self.process is None:
            return []
        pgid = self.process.pid  # start_new_session: the group id is the leader's pid
        proc = Path("/proc")
        if not proc.is_dir():  # not Linux: the group either has members or not
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return []
            return [pgid]
        pids = []
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # exited meanwhile
            # "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
            fields = stat[stat.rindex(")") + 2 :].split()
            state, pgrp = fields[0], int(fields[2])
            if pgrp == pgid and state not in ("Z", "X"):
                pids.append(int(entry.name))
        return sorted(pids)

    def log(self) -> str:
        """Everything the worker printed so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _fail(self, what: str) -> None:
        raise RuntimeError(
            f"Celery worker {self.name} {what}.\n"
            f"command: {' '.join(self.command())}\n"
            f"--- worker log ({self.log_path}) ---\n{self.log()}"
        )

    def __repr__(self) -> str:
        state = "running" if self.alive else ("stopped" if self.process else "not started")
        return f"<CeleryWorker {self.name} queue={self.queue} {state}>"
