"""The authorisation matrix (tests/security/authz_table.py) against the real API: every route by
every caller answers exactly the status and code of its cell; another workspace's objects are
indistinguishable from missing ones; the table covers every operation of the OpenAPI schema."""

from __future__ import annotations

import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.security.authz_table import CODES, NOT_FOUND_CODES, ROLES, ROUTES, Route
from tests.security.world import World, build_world

pytestmark = pytest.mark.django_db

MISSING_ID = "zz-no-such-object"
MISSING_NUMBER = "999999999"  # for the routes whose id is an integer (chat connections, identities)
# Routes of the table the schema does not describe (it does not describe itself).
NOT_IN_SCHEMA = {("GET", "/api/schema/")}


def call(world: World, route: Route, role: str, ids: dict[str, str] | None = None):
    client = world.client(role)
    path = route.path.format(**(ids or world.ids()))
    method = getattr(client, route.method.lower())
    if route.body is None:
        return method(path)
    return method(path, route.body, format="json")


def expected_code(route: Route, short: str) -> str:
    if short == "MISSING":
        return NOT_FOUND_CODES[route.scoped_id]
    return CODES[short]


@pytest.mark.parametrize(
    ("route", "role"),
    [pytest.param(route, role, id=f"{route.name}-{role}") for route in ROUTES for role in ROLES],
)
def test_cell(make_member, route, role):
    world = build_world(make_member, runs=(route.run,) if route.run else ())
    response = call(world, route, role)
    status, code = route.expect[role]
    assert response.status_code == status, response.content
    if code is not None:
        assert response.json()["code"] == expected_code(route, code)


@pytest.mark.parametrize(
    "route", [pytest.param(r, id=r.name) for r in ROUTES if r.scoped_id is not None]
)
def test_other_workspace_answers_exactly_like_a_missing_object(make_member, route):
    """Same status and same body (the id itself aside) for an object of another workspace as
    for an id that exists nowhere: nothing tells the caller the object exists."""
    world = build_world(make_member, runs=(route.run,) if route.run else ())
    ids = world.ids()
    key = route.scoped_key
    real_id = ids[key]
    real = call(world, route, "other_workspace")
    absent = MISSING_NUMBER if real_id.isdigit() else MISSING_ID
    missing = call(world, route, "other_workspace", {**ids, key: absent})
    assert real.status_code == missing.status_code == 404
    normalise = {real_id: "<id>", absent: "<id>"}
    assert _replace(real.json(), normalise) == _replace(missing.json(), normalise)


def _replace(value, mapping: dict[str, str]):
    if isinstance(value, dict):
        return {k: _replace(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, mapping) for v in value]
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return mapping.get(str(value), value)  # integer ids (chat rows) are compared as text
    return value


def test_the_table_covers_every_api_operation():
    """A route added to the API without a row here fails this test."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {
        (method.upper(), path)
        for path, methods in schema["paths"].items()
        for method in methods
        if method in ("get", "post", "patch", "put", "delete")
    }
    covered = {(route.method, _template(route.path)) for route in ROUTES} - NOT_IN_SCHEMA
    assert operations - covered == set()
    assert covered - operations == set()


def _template(path: str) -> str:
    path = re.sub(r"\{\w+_run_id\}", "{run_id}", path)
    return path.replace("/tasks/review/", "/tasks/{node_id}/")
