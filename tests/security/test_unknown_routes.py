"""Unknown routes under /api answer the JSON 404 for every method, with or without a session
cookie: the CSRF middleware must not turn an unsafe request into an HTML 403 first."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_unknown_api_route_is_a_json_404(method, db):
    client = Client(enforce_csrf_checks=True)
    client.cookies["sessionid"] = "not-a-session"
    response = getattr(client, method)("/api/automations/v2/x/no/such/route")
    assert response.status_code == 404
    assert response.json() == {"error": "No such API route", "code": "NOT_FOUND"}


@pytest.mark.parametrize(
    "path", ["/api/channels/connections/%0Az", "/api/channels/identities/%0A1", "/api/x%0A"]
)
def test_an_api_path_with_a_line_break_is_a_json_404(path, db):
    response = Client().get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "No such API route", "code": "NOT_FOUND"}
