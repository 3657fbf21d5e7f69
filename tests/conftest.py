"""Shared fixtures: workspaces with members of every role, API clients authenticated by token,
the broker kept out (`no_broker`), and a real Celery worker process (`celery_worker`,
`celery_worker_factory`).

Fixtures live in conftest.py files and builders of data in tests/factories.py; a test module
never imports from another test module (tests/support/ holds the other shared helpers)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from governance.models import PrincipalKind, Role, User, Workspace
from governance.services import member_add, token_issue, workspace_create
from tests.support import nodekinds
from tests.support.stand_in import StandIn
from tests.support.worker import (
    CeleryWorker,
    configure_test_queue,
    delete_queue,
    pin_test_broker,
    purge_queue,
    require_redis_url,
)

BROWSER_TESTS = Path(__file__).parent / "browser"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the marks
def pytest_collection_modifyitems(items):
    """Keep together, in one xdist worker, the tests that are heavy on the 2-core machine:

    - every test that starts a real Celery worker (`celery_worker_factory`): they run one
      after another instead of two prefork workers competing for the cores with their
      timing-sensitive steps (heartbeats, stale sweeps, retry delays);
    - the browser tests (tests/browser): one Chromium and one live server instead of two.

    pyproject.toml runs the suite with `--dist loadgroup`; every other test goes to whichever
    worker is free. Under `-n 0` the marks do nothing.
    """
    for item in items:
        if "celery_worker_factory" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("celery_worker"))
        elif BROWSER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("browser"))


@dataclass
class Member:
    user: User
    workspace: Workspace
    token: str

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")
        return client


@pytest.fixture
def make_member(db):
    """`make_member("acme/ops", "alice", role="operator", kind="human", clearances=[...])`."""

    def make(
        path: str,
        username: str,
        *,
        role: str = Role.VIEWER,
        kind: str = PrincipalKind.HUMAN,
        clearances=(),
    ) -> Member:
        workspace, _ = workspace_create(path=path)
        result = member_add(
            workspace=workspace,
            username=username,
            role=role,
            kind=kind,
            password="pw-for-tests" if kind == PrincipalKind.HUMAN else None,
            clearances=list(clearances),
        )
        _, raw = token_issue(user=result.user, workspace=workspace)
        return Member(user=result.user, workspace=workspace, token=raw)

    return make


@pytest.fixture
def workspace(db) -> Workspace:
    return workspace_create(path="acme/ops")[0]


@pytest.fixture
def other_workspace(db) -> Workspace:
    return workspace_create(path="globex/ops")[0]


@pytest.fixture
def admin(make_member) -> Member:
    return make_member("acme/ops", "ada-admin", role=Role.ADMIN)


@pytest.fixture
def operator(make_member) -> Member:
    return make_member("acme/ops", "otto-operator", role=Role.OPERATOR)


@pytest.fixture
def viewer(make_member) -> Member:
    return make_member("acme/ops", "vera-viewer", role=Role.VIEWER)


@pytest.fixture
def reviewer(make_member) -> Member:
    return make_member("acme/ops", "rita-reviewer", role=Role.REVIEWER)


@pytest.fixture
def outsider(make_member) -> Member:
    """An admin of another organisation's workspace: must never see acme's data."""
    return make_member("globex/ops", "oscar-outsider", role=Role.ADMIN)


@pytest.fixture
def agent(make_member) -> Member:
    return make_member("acme/ops", "bot-agent", role=Role.OPERATOR, kind=PrincipalKind.AGENT)


# --- The broker kept out -------------------------------------------------------------------------


@pytest.fixture
def no_broker(monkeypatch) -> list[str]:
    """Keep the broker out: the run ids the code would schedule
    (`automations.scheduling.advance_now`) are recorded in the returned list instead of being
    published, and task revocations are dropped. Even with a real worker running, the engine
    does not advance runs behind the test's back.

    The one place that knows where scheduling lives: use it with
    `pytestmark = pytest.mark.usefixtures("no_broker")`, or by name to read the list.
    """
    scheduled: list[str] = []
    monkeypatch.setattr(
        "automations.scheduling.advance_now", lambda run_id, **kw: scheduled.append(run_id)
    )
    monkeypatch.setattr("automations.scheduling.revoke_now", lambda task_ids: None)
    return scheduled


@pytest.fixture
def node_kinds(settings) -> None:
    """Register the test node kinds (`sleep`, `fail`, `held`; tests/support/nodekinds.py) in
    this process. A worker learns them from `celery_worker_factory(env=nodekinds.WORKER_ENV)`."""
    settings.FLOWGATE_NODE_KINDS = nodekinds.KINDS_SETTING


# --- A real Celery worker (tests/support/worker.py) --------------------------------------------

# Once per pytest process (so once per xdist worker), before any test publishes a task: this
# process and every worker it starts use their own queue, `test-<pid>-<random>`, so parallel
# sessions and xdist workers sharing one Redis never consume each other's tasks.
CELERY_TEST_QUEUE = configure_test_queue()


@pytest.fixture(scope="session")
def celery_test_queue() -> str:
    """This pytest process's Celery queue; removed from the broker at the end of the session."""
    yield CELERY_TEST_QUEUE
    if os.environ.get("REDIS_URL"):
        delete_queue(CELERY_TEST_QUEUE)


@pytest.fixture
def celery_worker_factory(transactional_db, tmp_path, celery_test_queue):
    """Start real Celery workers: `celery_worker_factory(concurrency=2, env={...})` -> started.

    Each call starts a `celery worker` subprocess (prefork, its own process group) consuming
    this session's queue, against pytest-django's test database and REDIS_URL, and returns the
    `CeleryWorker` once it is ready (about a second). `env` adds variables, e.g.
    `{"FLOWGATE_STALE_AFTER_S": "2"}`. The queue is purged first unless another worker of this
    test is still running. Use the factory for custom settings and for tests that kill a worker
    (`worker.kill()`) and start a fresh one.

    Tests need `@pytest.mark.django_db(transaction=True)`: the worker is another process and
    sees only committed data (this fixture requests `transactional_db`, which forces that
    anyway; the mark says so where it matters).

    At teardown, before the database is flushed, every worker is SIGKILLed with its children
    (tasks still running must not write into the next test), the queue is purged, and each
    worker's log is printed (pytest shows it for failing tests).
    """
    pin_test_broker(require_redis_url())
    workers: list[CeleryWorker] = []

    def start(*, concurrency: int = 2, env: dict[str, str] | None = None, **kwargs) -> CeleryWorker:
        log_path = tmp_path / f"celery-worker-{len(workers) + 1}.log"
        worker = CeleryWorker(concurrency=concurrency, env=env, log_path=log_path, **kwargs)
        others_running = any(other.alive for other in workers)
        workers.append(worker)
        return worker.start(purge=not others_running)

    yield start

    errors = []
    for worker in workers:
        try:
            worker.kill()
        except Exception as exc:  # keep killing the others
            errors.append(exc)
        print(f"--- {worker!r}, log {worker.log_path} ---\n{worker.log()}")
    purge_queue(celery_test_queue)
    if errors:
        raise errors[0]


@pytest.fixture
def celery_worker(celery_worker_factory) -> CeleryWorker:
    """A started Celery worker (concurrency 2) for this test; see `celery_worker_factory`.

    Needs `@pytest.mark.django_db(transaction=True)`. Send tasks with `.delay()` once the data
    they read is committed, then poll for the effect with `tests.support.wait_for`.
    """
    return celery_worker_factory()


@pytest.fixture
def stand_in():
    """A real HTTP server on 127.0.0.1 standing in for what Flowgate calls (http nodes, model
    providers, webhook receivers); tests/support/stand_in.py."""
    server = StandIn()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def demo_tokens_file(settings, tmp_path):
    """`seed_demo` keeps the demo's raw tokens in a file: each test gets its own, never the
    checkout's var/demo-tokens.json."""
    settings.FLOWGATE_DEMO_TOKENS_FILE = tmp_path / "demo-tokens.json"
    return settings.FLOWGATE_DEMO_TOKENS_FILE
