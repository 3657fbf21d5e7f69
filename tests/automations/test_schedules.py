"""Schedules (issue 17 item 5): managed through the API by the automation's editors (checked
at save, audited), fired by beat's task exactly once per fire time, skipping or queueing while
the automation is paused. The beat process itself is in test_schedule_beat.py."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from automations import services
from automations.models import Automation, AutomationStatus, Run, Schedule, TriggerType
from automations.triggers import schedules
from governance.models import AuditEvent
from tests.factories import AUTOMATIONS_URL as URL
from tests.factories import actor_for
from tests.factories import create_automation as create

pytestmark = pytest.mark.usefixtures("no_broker")

SCHEMA = {"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]}


def schedules_url(automation_id="weekly"):
    return f"{URL}/{automation_id}/schedules"


def add(member, automation_id="weekly", **body):
    body = {"cron": "0 9 * * mon-fri", "timezone": "Europe/Berlin", **body}
    return member.client().post(schedules_url(automation_id), body, format="json")


def make_due(schedule_id: str, at: datetime) -> None:
    Schedule.objects.filter(schedule_id=schedule_id).update(next_fire_at=at)


@pytest.mark.django_db
class TestScheduleApi:
    def test_create_computes_the_next_fire_time_in_the_time_zone(self, operator):
        create(operator, automation_id="weekly")
        response = add(operator, inputs={"topic": "sales"})
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["cron"] == "0 9 * * mon-fri" and body["timezone"] == "Europe/Berlin"
        assert body["inputs"] == {"topic": "sales"} and body["enabled"] is True
        fire = datetime.fromtimestamp(body["next_fire_at_ms"] / 1000, UTC)
        local = fire.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
        assert (local.hour, local.minute, local.weekday() < 5) == (9, 0, True)
        read = operator.client().get(f"{schedules_url()}/{body['schedule_id']}")
        assert read.status_code == 200 and read.json() == body
        event = AuditEvent.objects.get(event_type="automation.schedule.created")
        assert event.payload["scheduleID"] == body["schedule_id"]

    @pytest.mark.parametrize(
        ("body", "code", "field"),
        [
            ({"cron": "61 * * * *"}, "SCHEDULE_CRON_INVALID", "cron"),
            ({"cron": "not a cron"}, "SCHEDULE_CRON_INVALID", "cron"),
            ({"cron": "0 9 * * * * 2030"}, "SCHEDULE_CRON_INVALID", "cron"),
            ({"cron": "* * * * *"}, "SCHEDULE_CRON_INVALID", "cron"),  # every minute: ok...
            ({"timezone": "Mars/Olympus"}, "SCHEDULE_TIMEZONE_INVALID", "timezone"),
            ({"timezone": "../../etc/passwd"}, "SCHEDULE_TIMEZONE_INVALID", "timezone"),
            ({"inputs": {"topic": 5}}, "RUN_INPUTS_INVALID", "inputs.topic"),
            ({"inputs": [1]}, "INVALID_REQUEST", "inputs"),
            ({"cron": 5}, "INVALID_REQUEST", "cron"),
            ({"every": "day"}, "INVALID_REQUEST", "every"),
        ],
    )
    def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
        self, operator, settings, body, code, field
    ):
        settings.FLOWGATE_SCHEDULE_MIN_INTERVAL_S = 120  # ...but more often than allowed here
        create(operator, automation_id="weekly", input_schema=SCHEMA)
        response = add(operator, **body)
        assert response.status_code == 400, response.json()
        assert response.json()["code"] == code
        assert field in response.json()["fields"]
        assert not Schedule.objects.exists()
        assert not AuditEvent.objects.filter(event_type__startswith="automation.schedule").exists()

    def test_seconds_and_macros_are_accepted(self, operator, settings):
        settings.FLOWGATE_SCHEDULE_MIN_INTERVAL_S = 5
        create(operator, automation_id="weekly")
        assert add(operator, cron="*/10 * * * * *").status_code == 201
        assert add(operator, cron="@daily", timezone="UTC").status_code == 201
        assert add(operator, cron="*/2 * * * * *").json()["code"] == "SCHEDULE_CRON_INVALID"

    def test_patch_disables_and_reenables_without_firing_missed_times(self, operator):
        create(operator, automation_id="weekly")
        schedule_id = add(operator).json()["schedule_id"]
        url = f"{schedules_url()}/{schedule_id}"
        off = operator.client().patch(url, {"enabled": False}, format="json")
        assert off.status_code == 200 and off.json()["next_fire_at_ms"] is None
        on = operator.client().patch(url, {"enabled": True, "cron": "@hourly"}, format="json")
        assert on.status_code == 200
        assert on.json()["next_fire_at_ms"] > datetime.now(UTC).timestamp() * 1000
        bad = operator.client().patch(url, {"timezone": "Nowhere/City"}, format="json")
        assert bad.status_code == 400 and Schedule.objects.get().timezone == "Europe/Berlin"
        changed = AuditEvent.objects.filter(event_type="automation.schedule.updated")
        assert [e.payload["changed"] for e in changed.order_by("seq")] == [
            ["enabled"],
            ["cron", "enabled"],
        ]

    def test_delete_removes_it_and_is_audited(self, operator):
        create(operator, automation_id="weekly")
        schedule_id = add(operator).json()["schedule_id"]
        url = f"{schedules_url()}/{schedule_id}"
        assert operator.client().delete(url).status_code == 204
        assert operator.client().get(url).json()["code"] == "SCHEDULE_NOT_FOUND"
        assert AuditEvent.objects.filter(event_type="automation.schedule.deleted").exists()


@pytest.mark.django_db
class TestSchedulePermissions:
    """Anonymous 401; another workspace 404 (exactly as a missing automation); viewers (and
    operators, who may run but not edit) read but may not change (403, audited)."""

    @pytest.fixture
    def schedule_id(self, operator):
        create(operator, automation_id="weekly")
        return add(operator).json()["schedule_id"]

    def routes(self, schedule_id):
        one = f"{schedules_url()}/{schedule_id}"
        return [
            ("get", schedules_url(), None, 200),
            ("post", schedules_url(), {"cron": "@daily"}, 201),
            ("get", one, None, 200),
            ("patch", one, {"enabled": False}, 200),
            ("delete", one, None, 204),
        ]

    def call(self, client, method, path, body):
        return (
            getattr(client, method)(path, body, format="json")
            if body
            else getattr(client, method)(path)
        )

    def test_anonymous(self, schedule_id, client):
        for method, path, body, _ in self.routes(schedule_id):
            response = self.call(client, method, path, body)
            assert response.status_code == 401, (method, path)

    def test_another_workspace_sees_nothing(self, schedule_id, outsider):
        for method, path, body, _ in self.routes(schedule_id):
            response = self.call(outsider.client(), method, path, body)
            assert response.status_code == 404, (method, path)
            assert response.json()["code"] == "AUTOMATION_V2_NOT_FOUND"

    @pytest.mark.parametrize("member", ["viewer", "reviewer"])
    def test_members_without_change_read_but_may_not_change(self, schedule_id, request, member):
        client = request.getfixturevalue(member).client()
        for method, path, body, ok in self.routes(schedule_id):
            response = self.call(client, method, path, body)
            expected = ok if method == "get" else 403
            assert response.status_code == expected, (method, path, response.json())
        denials = AuditEvent.objects.filter(event_type="automation.governance.denied")
        assert denials.count() == 3
        assert Schedule.objects.get().enabled is True

    def test_admin_may_change(self, schedule_id, admin):
        for method, path, body, ok in self.routes(schedule_id):
            assert self.call(admin.client(), method, path, body).status_code == ok


@pytest.mark.django_db
def test_the_list_pages_and_costs_the_same_queries_for_one_or_many(
    operator, django_assert_num_queries
):
    create(operator, automation_id="weekly")
    add(operator)
    client = operator.client()
    with django_assert_num_queries(4):  # token, membership, automation, the page
        assert client.get(schedules_url()).json()["count"] == 1
    for _ in range(4):
        add(operator)
    with django_assert_num_queries(4):
        page = client.get(f"{schedules_url()}?limit=3").json()
    assert page["count"] == 3 and page["next_cursor"]
    rest = client.get(f"{schedules_url()}?limit=3&cursor={page['next_cursor']}").json()
    assert rest["count"] == 2 and rest["next_cursor"] is None
    ids = [s["schedule_id"] for s in page["schedules"] + rest["schedules"]]
    assert len(set(ids)) == 5


# --- Firing ------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestFiring:
    def test_a_due_schedule_starts_one_run_and_moves_on(self, operator):
        create(operator, automation_id="weekly", input_schema=SCHEMA)
        schedule_id = add(operator, inputs={"topic": "sales"}).json()["schedule_id"]
        fire_at = datetime.now(UTC) - timedelta(seconds=1)
        make_due(schedule_id, fire_at)
        started = schedules.schedules_fire_due()
        assert len(started) == 1
        run = Run.objects.get(run_id=started[0])
        assert run.trigger_type == TriggerType.SCHEDULE
        assert (run.trigger_id, run.scheduled_for) == (schedule_id, fire_at)
        assert run.inputs == {"topic": "sales"}
        assert run.requested_by == operator.user  # who set the schedule up answers for it
        schedule = Schedule.objects.get()
        assert schedule.next_fire_at > datetime.now(UTC) and schedule.last_run_id == run.run_id
        assert schedules.schedules_fire_due() == []  # not due again
        event = AuditEvent.objects.get(event_type="automation.run_started")
        assert (event.actor_kind, event.actor_id) == ("trigger", f"schedule:{schedule_id}")
        assert event.payload["scheduledFor"] == fire_at.isoformat()
        body = operator.client().get(f"{URL}/runs/{run.run_id}").json()["run"]
        assert body["trigger_type"] == "schedule" and body["inputs"] == {"topic": "sales"}

    def test_missed_fire_times_collapse_into_one_run(self, operator):
        create(operator, automation_id="weekly")
        schedule_id = add(operator, cron="@hourly").json()["schedule_id"]
        make_due(schedule_id, datetime.now(UTC) - timedelta(hours=5))
        assert len(schedules.schedules_fire_due()) == 1
        assert Schedule.objects.get().next_fire_at > datetime.now(UTC)

    def test_a_paused_automation_skips_by_default_audited(self, operator):
        create(operator, automation_id="weekly")
        schedule_id = add(operator).json()["schedule_id"]
        Automation.objects.update(status=AutomationStatus.PAUSED)
        make_due(schedule_id, datetime.now(UTC) - timedelta(seconds=1))
        assert schedules.schedules_fire_due() == []
        assert not Run.objects.exists()
        skipped = AuditEvent.objects.get(event_type="automation.schedule.fire_skipped")
        assert skipped.payload["code"] == "AUTOMATION_V2_NOT_ACTIVE"
        assert skipped.actor_kind == "trigger"
        assert Schedule.objects.get().next_fire_at > datetime.now(UTC)

    def test_queue_mode_keeps_the_fire_until_the_automation_resumes(self, operator, settings):
        settings.FLOWGATE_SCHEDULE_WHEN_PAUSED = "queue"
        automation = Automation.objects.get(
            pk=Automation.objects.get(automation_id=create(operator)["automation_id"]).pk
        )
        schedule = schedules.schedule_create(
            actor=actor_for(operator), automation=automation, data={"cron": "@daily"}
        )
        Automation.objects.update(status=AutomationStatus.PAUSED)
        fire_at = datetime.now(UTC) - timedelta(minutes=1)
        make_due(schedule.schedule_id, fire_at)
        assert schedules.schedules_fire_due() == []
        assert Schedule.objects.get().next_fire_at == fire_at  # still owed
        Automation.objects.update(status=AutomationStatus.ACTIVE)
        started = schedules.schedules_fire_due()
        assert [Run.objects.get(run_id=r).scheduled_for for r in started] == [fire_at]

    def test_inputs_no_longer_matching_a_changed_schema_skip_the_fire(self, operator):
        create(operator, automation_id="weekly")
        schedule_id = add(operator, inputs={"topic": 1}).json()["schedule_id"]
        operator.client().patch(f"{URL}/weekly", {"input_schema": SCHEMA}, format="json")
        make_due(schedule_id, datetime.now(UTC) - timedelta(seconds=1))
        assert schedules.schedules_fire_due() == []
        skipped = AuditEvent.objects.get(event_type="automation.schedule.fire_skipped")
        assert skipped.payload["code"] == "RUN_INPUTS_INVALID"

    def test_a_deleted_automation_schedule_never_fires(self, operator):
        create(operator, automation_id="weekly")
        schedule_id = add(operator).json()["schedule_id"]
        automation = Automation.objects.get()
        services.automation_delete(actor=actor_for(operator), automation=automation)
        make_due(schedule_id, datetime.now(UTC) - timedelta(seconds=1))
        assert schedules.schedules_fire_due() == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_firing_starts_exactly_one_run_per_fire_time(operator, no_broker):
    """Eight threads (each its own PostgreSQL connection, as several beat processes would be)
    fire the same twenty due schedules at once: twenty runs, one per schedule and fire time."""
    create(operator, automation_id="weekly")
    fire_at = datetime.now(UTC) - timedelta(seconds=1)
    ids = [add(operator, cron="@hourly").json()["schedule_id"] for _ in range(20)]
    Schedule.objects.update(next_fire_at=fire_at)
    barrier = threading.Barrier(8)
    started: list[str] = []
    errors: list[BaseException] = []

    def beat():
        try:
            barrier.wait()
            started.extend(schedules.schedules_fire_due())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(started) == len(set(started)) == 20
    fired = list(Run.objects.values_list("trigger_id", "scheduled_for"))
    assert sorted(fired) == sorted((schedule_id, fire_at) for schedule_id in ids)


# --- A schedule acts for its creator, who must still be allowed to change the automation -------


class TestOwnerAuthority:
    @pytest.fixture
    def admins_schedule(self, operator, admin) -> str:
        """A schedule an admin added to the operator's automation."""
        create(operator, automation_id="weekly")
        return add(admin).json()["schedule_id"]

    @pytest.mark.parametrize("how", ["removed", "demoted", "deactivated"])
    def test_a_creator_who_lost_the_authority_stops_the_schedule_audited(
        self, admin, admins_schedule, how
    ):
        from governance.models import Membership, Role
        from governance.services import member_remove

        membership = Membership.objects.get(user=admin.user)
        if how == "removed":
            member_remove(membership=membership)
        elif how == "demoted":
            Membership.objects.filter(pk=membership.pk).update(role=Role.VIEWER)
        else:
            type(admin.user).objects.filter(pk=admin.user.pk).update(is_active=False)
        make_due(admins_schedule, datetime.now(UTC) - timedelta(seconds=1))
        assert schedules.schedules_fire_due() == []
        assert not Run.objects.exists()
        schedule = Schedule.objects.get()
        assert (schedule.enabled, schedule.next_fire_at) == (False, None)
        disabled = AuditEvent.objects.get(event_type="automation.schedule.disabled")
        assert disabled.payload["code"] == "TRIGGER_OWNER_NOT_AUTHORISED"
        assert disabled.actor_id == f"schedule:{admins_schedule}"
        assert schedules.schedules_fire_due() == []  # stopped once, not skipped every tick
        assert AuditEvent.objects.filter(event_type="automation.schedule.disabled").count() == 1

    def test_re_enabling_it_is_refused_and_a_new_schedule_acts_for_its_editor(
        self, operator, admin, admins_schedule
    ):
        from governance.models import Membership
        from governance.services import member_remove

        member_remove(membership=Membership.objects.get(user=admin.user))
        make_due(admins_schedule, datetime.now(UTC) - timedelta(seconds=1))
        schedules.schedules_fire_due()
        response = operator.client().patch(
            f"{schedules_url()}/{admins_schedule}", {"enabled": True}, format="json"
        )
        assert response.status_code == 409, response.json()
        assert response.json()["code"] == "TRIGGER_OWNER_NOT_AUTHORISED"
        assert Schedule.objects.get(schedule_id=admins_schedule).enabled is False
        mine = add(operator).json()["schedule_id"]
        make_due(mine, datetime.now(UTC) - timedelta(seconds=1))
        [run_id] = schedules.schedules_fire_due()
        assert Run.objects.get(run_id=run_id).requested_by == operator.user
