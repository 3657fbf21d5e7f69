"""Every error under /api is JSON `{"error", "code", ...}`; nothing a client sends is a 500."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from automations.models import Automation
from automations.runs.sweeps import sweep_mark_completed
from automations.scheduling import SWEEP_RUNS
from governance.models import AuditChainHead
from tests.factories import AUTOMATIONS_URL as URL
from tests.factories import create_automation as create

# Raw JSON bodies that parse in Python but that PostgreSQL's jsonb (or the process) cannot hold.
HOSTILE_JSON = {
    "overflowing number": '{"name": "x", "metadata": {"a": 1e400}}',
    "overflowing negative number": '{"name": "x", "flow": {"nodes": [], "n": -1.5e999}}',
    "NaN": '{"name": "x", "metadata": {"a": NaN}}',
    "Infinity": '{"name": "x", "metadata": {"a": Infinity}}',
    "NUL in a field": r'{"name": "a\u0000b"}',
    "NUL in a nested string": r'{"name": "x", "metadata": {"a": ["ok", "a\u0000b"]}}',
    "NUL in a key": r'{"name": "x", "metadata": {"a\u0000": 1}}',
    "unpaired surrogate": r'{"name": "x", "metadata": {"a": "\ud800"}}',
    "unpaired surrogate in a key": r'{"name": "x", "agents": [{"\udfff": 1}]}',
    "50,000 brackets": "[" * 50_000,
    "deep but well-formed": '{"name": "x", "metadata": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}",
    "5,000-digit integer": '{"name": "x", "metadata": {"a": ' + "1" * 5000 + "}}",
    "invalid UTF-8": b'{"name": "\xff\xfe"}',
}


def cursor_of(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


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
            *HOSTILE_JSON.values(),
        ],
        ids=lambda p: next((k for k, v in HOSTILE_JSON.items() if v is p), None),
    )
    def test_hostile_bodies_never_500(self, operator, payload):
        head = AuditChainHead.objects.get(workspace=operator.workspace).seq
        client = operator.client()
        if isinstance(payload, dict):
            response = client.post(URL, payload, format="json")
        else:
            response = client.post(URL, data=payload, content_type="application/json")
        assert response.status_code == 400, response.content
        assert response.json()["code"] in {"INVALID_REQUEST", "AUTOMATION_V2_INVALID_FLOW"}
        assert Automation.objects.count() == 0
        assert AuditChainHead.objects.get(workspace=operator.workspace).seq == head

    @pytest.mark.parametrize(
        "raw,message",
        [
            (HOSTILE_JSON["overflowing number"], "out of range"),
            (HOSTILE_JSON["NUL in a key"], "NUL"),
            (HOSTILE_JSON["NUL in a nested string"], "NUL"),
            (HOSTILE_JSON["unpaired surrogate"], "surrogate"),
            (HOSTILE_JSON["50,000 brackets"], "nested deeper than 32"),
            (HOSTILE_JSON["deep but well-formed"], "nested deeper than 32"),
        ],
    )
    @pytest.mark.parametrize("method,suffix", [("patch", "/weekly"), ("post", "/weekly/grants")])
    def test_hostile_json_is_refused_on_every_write_route(
        self, operator, raw, message, method, suffix
    ):
        create(operator, automation_id="weekly")
        response = getattr(operator.client(), method)(
            f"{URL}{suffix}", data=raw, content_type="application/json"
        )
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "INVALID_REQUEST"
        assert message in response.json()["error"]
        assert Automation.objects.get().version == 1


@pytest.mark.django_db
class TestHostilePathsAndQueries:
    """Ids in the path and cursors in the query are client input too: 404/400, never 500."""

    @pytest.mark.parametrize(
        "automation_id",
        ["a%00b", "weekly%0A", "x" * 5000, "%ED%A0%80", "a%C2%B2", "-leading-dash", "runs%00"],
    )
    @pytest.mark.parametrize(
        "method,suffix",
        [("get", ""), ("patch", ""), ("delete", ""), ("get", "/grants"), ("post", "/run_now")],
    )
    def test_automation_ids_no_automation_can_have_are_404(
        self, operator, django_assert_max_num_queries, automation_id, method, suffix
    ):
        create(operator, automation_id="weekly")
        client = operator.client()
        # token and membership only: the id is refused before any automation query
        with django_assert_max_num_queries(2):
            response = getattr(client, method)(f"{URL}/{automation_id}{suffix}", {}, format="json")
        missing = getattr(client, method)(f"{URL}/nope{suffix}", {}, format="json")
        assert response.status_code == missing.status_code == 404, response.content
        body = response.json()
        assert body["code"] == "AUTOMATION_V2_NOT_FOUND"
        assert set(body) == set(missing.json())
        assert body["error"] == missing.json()["error"]
        assert Automation.objects.get().version == 1

    def test_a_nul_in_the_id_is_echoed_as_json(self, operator):
        response = operator.client().get(f"{URL}/a%00b")
        assert response.status_code == 404
        assert response.json()["automationID"] == "a\x00b"
        assert b"\\u0000" in response.content

    @pytest.mark.parametrize("run_id", ["a%00b", "run-%0A", "r" * 65, "%ED%A0%80"])
    def test_run_ids_no_run_can_have_are_404(self, operator, run_id):
        response = operator.client().get(f"{URL}/runs/{run_id}")
        assert response.status_code == 404, response.content
        assert response.json()["code"] == "AUTOMATION_V2_RUN_NOT_FOUND"

    @pytest.mark.parametrize(
        "grant_id",
        ["u%C2%B2", "u%D9%A1", "u%00", "u1%0A", "u+1", "u-1", "u" + "9" * 19, "g" + "9" * 30],
    )
    def test_grant_ids_are_parsed_strictly(self, operator, grant_id):
        create(operator, automation_id="weekly")
        response = operator.client().delete(f"{URL}/weekly/grants/{grant_id}")
        assert response.status_code == 404, response.content
        assert response.json()["code"] == "GRANT_NOT_FOUND"

    @pytest.mark.parametrize(
        "cursor",
        [
            cursor_of(json.dumps(["2020-01-01T00:00:00", 1])),  # naive
            cursor_of('["2020-01-01T00:00:00+00:00", 1e400]'),
            cursor_of('["2020-01-01T00:00:00+00:00", 1.5]'),
            cursor_of('["2020-01-01T00:00:00+00:00", 0]'),
            cursor_of('["2020-01-01T00:00:00+00:00", -3]'),
            cursor_of('["2020-01-01T00:00:00+00:00", true]'),
            cursor_of('["2020-01-01T00:00:00+00:00", "7"]'),
            cursor_of(json.dumps(["2020-01-01T00:00:00+00:00", 2**63])),
            cursor_of(json.dumps(["9999-12-31T23:59:59-14:00", 1])),  # past year 9999 in UTC
            cursor_of(json.dumps(["2020-01-01T00:00:00+00:00"])),
            cursor_of(json.dumps({"a": 1})),
            cursor_of("[" * 140),
            "w6k",  # "é" base64-decoded is not UTF-8 JSON
            "%00",
        ],
    )
    def test_bad_cursors_are_400(self, operator, cursor):
        create(operator, automation_id="weekly")
        response = operator.client().get(URL, {"cursor": cursor})
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "INVALID_REQUEST"

    def test_an_aware_cursor_in_another_offset_pages_like_utc(self, operator):
        for n in range(3):
            create(operator, automation_id=f"a{n}")
        page = operator.client().get(URL, {"limit": 1}).json()
        stamp, pk = json.loads(base64.urlsafe_b64decode(page["next_cursor"] + "=="))
        from datetime import datetime, timedelta, timezone

        shifted = datetime.fromisoformat(stamp).astimezone(timezone(timedelta(hours=5)))
        cursor = cursor_of(json.dumps([shifted.isoformat(), pk]))
        second = operator.client().get(URL, {"limit": 1, "cursor": cursor}).json()
        assert [a["automation_id"] for a in second["automations"]] == ["a1"]

    @pytest.mark.parametrize(
        "url,params",
        [(URL, {"status": "a\x00"}), ("/api/audit/events", {"event_type": "a\x00b"})],
    )
    def test_nul_in_query_parameters_is_400(self, admin, url, params):
        response = admin.client().get(url, params)
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "INVALID_REQUEST"


@pytest.mark.django_db
class TestProbesAndSchema:
    def test_healthz(self, client):
        assert client.get("/healthz").json() == {"ok": True}

    def test_readyz_checks_database_broker_and_beat(self, client):
        sweep_mark_completed(SWEEP_RUNS)
        response = client.get("/readyz")
        body = response.json()
        assert set(body["checks"]) == {"database", "broker", "beat"}
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["beat"] == "ok"
        assert body["checks"]["broker"] in {"ok", "unavailable"}
        assert response.status_code == (200 if body["checks"]["broker"] == "ok" else 503)

    def test_readyz_reports_an_unreachable_broker_without_details(self, client, caplog):
        from config.celery import app

        original = app.conf.broker_url
        app.conf.broker_url = "redis://:s3cret@127.0.0.1:1/0"
        sweep_mark_completed(SWEEP_RUNS)
        try:
            response = client.get("/readyz")
        finally:
            app.conf.broker_url = original
        assert response.status_code == 503
        assert response.json() == {
            "ok": False,
            "checks": {"database": "ok", "broker": "unavailable", "beat": "ok"},
        }
        assert b"127.0.0.1" not in response.content
        assert b"s3cret" not in response.content
        logged = [r for r in caplog.records if r.name == "config.health"]
        assert logged and logged[0].levelname == "WARNING" and logged[0].exc_info

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
