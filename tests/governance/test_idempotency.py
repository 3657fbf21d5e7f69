"""`Idempotency-Key` (issue 17): a retried request gets the first response; a different body
with the same key is a 409; two racing requests with the same key act once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from automations.models import Automation, Run
from governance.models import IdempotencyRecord
from governance.tasks import forget_idempotency_records
from tests.factories import simple_agents, simple_flow

URL = "/api/automations/v2"


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr("automations.scheduling.advance_now", lambda run_id, **kw: None)


def create(member):
    body = {"automation_id": "weekly", "name": "Weekly", "flow": simple_flow()}
    return member.client().post(URL, {**body, "agents": simple_agents()}, format="json")


def run_now(client, key, inputs=None):
    body = {"inputs": inputs} if inputs is not None else None
    return client.post(f"{URL}/weekly/run_now", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
class TestRunNow:
    def test_a_retry_returns_the_same_run(self, operator):
        create(operator)
        client = operator.client()
        first = run_now(client, "k-1", {"a": 1})
        again = run_now(client, "k-1", {"a": 1})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"
        assert Run.objects.count() == 1
        assert (
            run_now(client, "k-2", {"a": 1}).json()["run"]["run_id"]
            != first.json()["run"]["run_id"]
        )

    def test_a_different_body_with_the_same_key_is_a_409(self, operator):
        create(operator)
        client = operator.client()
        run_now(client, "k-1", {"a": 1})
        response = run_now(client, "k-1", {"a": 2})
        assert response.status_code == 409
        assert response.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
        assert Run.objects.count() == 1

    def test_keys_are_per_principal(self, operator, make_member):
        create(operator)
        other = make_member(operator.workspace.path, "olga", role="operator")
        first = run_now(operator.client(), "k-1")
        second = run_now(other.client(), "k-1")
        assert first.json()["run"]["run_id"] != second.json()["run"]["run_id"]

    def test_an_error_is_not_stored(self, operator):
        client = operator.client()
        assert run_now(client, "k-1").status_code == 404
        create(operator)
        assert run_now(client, "k-1").status_code == 201


@pytest.mark.django_db
def test_automation_create_is_idempotent(operator):
    client = operator.client()
    body = {"name": "No id given", "flow": simple_flow(), "agents": simple_agents()}
    first = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    again = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["automation_id"] == again.json()["automation_id"]
    assert Automation.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_racing_requests_with_one_key_create_one_run(operator):
    create(operator)
    barrier, results = threading.Barrier(2), []

    def send():
        try:
            barrier.wait()
            results.append(run_now(operator.client(), "race", {"n": 1}))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results] == [201, 201]
    assert results[0].json()["run"]["run_id"] == results[1].json()["run"]["run_id"]
    assert Run.objects.count() == 1


@pytest.mark.django_db
def test_a_key_past_the_retention_window_acts_anew_and_is_forgotten(operator, settings):
    create(operator)
    client = operator.client()
    first = run_now(client, "old")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(days=2))
    settings.FLOWGATE_IDEMPOTENCY_RETENTION_S = 86400
    again = run_now(client, "old")
    assert again.status_code == 201
    assert again.json()["run"]["run_id"] != first.json()["run"]["run_id"]
    run_now(client, "other")
    IdempotencyRecord.objects.filter(key="other").update(
        created_at=timezone.now() - timedelta(days=2)
    )
    assert forget_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["old"]


@pytest.mark.django_db
def test_an_overlong_key_is_a_400(operator):
    create(operator)
    response = run_now(operator.client(), "k" * 256)
    assert response.status_code == 400
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_a_claim_whose_request_died_is_taken_over(operator):
    create(operator)
    IdempotencyRecord.objects.create(
        workspace=operator.workspace,
        principal=operator.user.username,
        key="dead",
        request_digest="x",
    )
    client = operator.client()
    assert run_now(client, "dead").status_code == 409  # within the lease the claim holds the key
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    response = run_now(client, "dead")
    assert response.status_code == 201
    assert Run.objects.count() == 1
