"""Schemathesis against the OpenAPI schema, in process: every operation, as a workspace admin,
on real objects, with a bounded number of generated examples per operation.

Schemathesis generates both schema-valid and schema-violating examples (its positive and
negative modes). Each example must answer without a 5xx and with a response that matches the
schema (status code documented, JSON body of the documented shape, content type). Path ids
are swapped for the ids of the world's objects (tests/security/world.py) in most examples, so
the fuzzer reaches the services and not just the 404 branch; the rest keep the generated id.
Every example runs inside a savepoint that is rolled back, so each starts from the same world
(a generated DELETE does not empty it for the examples after it).

`FUZZ_EXAMPLES` (default 15) sets the examples per operation; docs/reliability.md documents a
longer run.
"""

from __future__ import annotations

import hashlib
import os

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.world import build_world

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
APP = WSGIHandler()
# Loaded at collection, through the app itself (the schema view reads no database).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", APP)


@pytest.fixture
def world(make_member):
    return build_world(make_member)


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """As Django's test client does: a request must not close the connection that holds the
    test's transaction (the WSGI handler closes it at the end of every request)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def real_ids(case, world) -> None:
    """Point most examples' path ids at the world's objects (which run: picked by the example)."""
    ids = world.ids()
    runs = [ids[key] for key in sorted(ids) if key.endswith("_run_id")]
    for name, value in list((case.path_parameters or {}).items()):
        digest = int(hashlib.sha256(str(value).encode()).hexdigest(), 16)
        if digest % 5 == 0:
            continue  # keep the generated id: the not-found and bad-id branches
        if name == "automation_id":
            case.path_parameters[name] = ids["automation_id"]
        elif name == "run_id":
            case.path_parameters[name] = runs[digest % len(runs)]
        elif name == "node_id":
            case.path_parameters[name] = ("draft", "review", "approval", "publish")[digest % 4]
        elif name in ("schedule_id", "trigger_id", "token"):
            case.path_parameters[name] = ids[name]
        elif name in ("grant_id", "connection_id", "identity_id", "webhook_id", "delivery_id"):
            value = ids[name]
            case.path_parameters[name] = int(value) if value.isdigit() else value


def no_long_polls(case) -> None:
    """The event feed's `wait` would hold an example up to 30 s: the fuzzer asks without
    waiting (the long-poll has its own tests, tests/governance/test_event_feed_api.py)."""
    wait = (case.query or {}).get("wait")
    try:
        if int(wait) > 0:
            case.query["wait"] = 0
    except (TypeError, ValueError):
        pass


@pytest.mark.django_db
@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api(case, world):
    real_ids(case, world)
    no_long_polls(case)
    token = world.members["admin"].token
    with transaction.atomic():
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        transaction.set_rollback(True)
    assert response.status_code < 500, (response.status_code, response.text[:2000])
    case.validate_response(
        response,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
    )
