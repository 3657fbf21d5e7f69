"""Every error under /api is JSON `{"error", "code", ...}`; nothing a client sends is a 500."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from automations.models import Automation
from tests.automations.test_api import URL


@pytest.mark.django_db
class TestErrorShape:
    def test_malformed_json(self, operator):
        response = operator.client().post(URL, data='{"name": ', content_type="application/json")
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_REQUEST"
        assert "Malformed" in response.json()["error"]
        assert Automation.objects.count() == 0

    def test_json_that_is_not_an_object(self, operator):
        response = operator.client().post(URL, data="[1, 2]", content_type="application/json")
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_REQUEST"

    def test_wrong_media_type(self, operator):
        response = operator.client().post(URL, data="name=x", content_type="text/plain")
        assert response.status_code == 415
        assert response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"

    def test_method_not_allowed(self, operator):
        response = operator.client().put(URL, {}, format="json")
        assert response.status_code == 405
        assert response.json()["code"] == "METHOD_NOT_ALLOWED"

    @pytest.mark.parametrize(
        "path", ["/api/nothing", "/api/automations/v3", "/api/automations/v2/", "/api", "/api/"]
    )
    def test_unknown_routes_are_json_404(self, db, path):
        response = APIClient().get(path)
        assert response.status_code == 404
        assert response.json() == {"error": "No such API route", "code": "NOT_FOUND"}

    def test_unauthenticated(self, db):
        response = APIClient().post(URL, {"name": "x"}, format="json")
        assert response.status_code == 401
        assert response.json()["code"] == "AUTHENTICATION_REQUIRED"

    @override_settings(FLOWGATE_MAX_BODY_BYTES=1000)
    def test_oversized_body_is_413_before_parsing(self, operator):
        payload = '{"name": "' + "x" * 2000 + '"}'
        response = operator.client().post(URL, data=payload, content_type="application/json")
        assert response.status_code == 413
        assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
        assert Automation.objects.count() == 0

    def test_invalid_content_length(self, operator):
        response = operator.client().post(
            URL, data="{}", content_type="application/json", CONTENT_LENGTH="abc"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_REQUEST"

    @pytest.mark.parametrize(
        "payload",
        [
            {"name": None},
            {"name": "x", "flow": {"nodes": "all"}},
            {"name": "x", "flow": {"nodes": [1, 2]}},
            {"name": "x", "flow": {"nodes": [{"node_id": ["a"]}]}},
            {"name": "x", "execution": {"max_parallel": "lots"}},
            {"name": "x", "agents": [{"agent_id": 7}]},
            {"name": "x", "handoff_config": {"inbox_dir": 5}},
            {"name": "x" * 500},
        ],
    )
    def test_hostile_bodies_never_500(self, operator, payload):
        response = operator.client().post(URL, payload, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["code"] in {"INVALID_REQUEST", "AUTOMATION_V2_INVALID_FLOW"}
        assert Automation.objects.count() == 0


@pytest.mark.django_db
class TestProbesAndSchema:
    def test_healthz(self, client):
        assert client.get("/healthz").json() == {"ok": True}

    def test_readyz_checks_database_and_broker(self, client):
        response = client.get("/readyz")
        body = response.json()
        assert set(body["checks"]) == {"database", "broker"}
        assert body["checks"]["database"] == "ok"
        assert response.status_code == (200 if body["checks"]["broker"] == "ok" else 503)

    @override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    def test_readyz_reports_an_unreachable_broker(self, client, settings):
        from config.celery import app

        original = app.conf.broker_url
        app.conf.broker_url = "redis://127.0.0.1:1/0"
        try:
            response = client.get("/readyz")
        finally:
            app.conf.broker_url = original
        assert response.status_code == 503
        assert response.json()["checks"]["broker"] != "ok"

    def test_openapi_schema_lists_the_automation_routes(self, client):
        response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
        assert response.status_code == 200
        paths = response.json()["paths"]
        assert "/api/automations/v2" in paths
        assert "/api/automations/v2/{automation_id}" in paths

    def test_swagger_ui(self, client):
        assert client.get("/api/docs/").status_code == 200


def test_openapi_schema_is_valid_without_warnings(tmp_path):
    """Every view documents its input and output: generation fails on any warning."""
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/api/automations/v2/{automation_id}/grants" in target.read_text()
