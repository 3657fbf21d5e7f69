"""Run by tests/config/test_embedded_default.py in a subprocess on the embedded default
(SQLite, filesystem broker): every read and control endpoint must answer, not 500.

Prints one `METHOD path status` line per call; the test asserts on them.
"""

import django

django.setup()

from django.test import Client  # noqa: E402

from automations import scheduling  # noqa: E402
from governance.models import User  # noqa: E402
from governance.services import token_issue, workspace_get  # noqa: E402

# Nothing is executed here: the point is the SQL of every endpoint on SQLite.
scheduling.advance_now = lambda *args, **kwargs: None
scheduling.dispatch_now = lambda *args, **kwargs: None

workspace = workspace_get("demo/main")
tokens = {
    name: token_issue(user=User.objects.get(username=name), workspace=workspace)[1]
    for name in ("owner", "reviewer")
}
client = Client(HTTP_HOST="127.0.0.1")


def call(method, path, user="owner", **data):
    response = getattr(client, method)(
        path,
        data or None,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {tokens[user]}",
    )
    print(method.upper(), path.replace(run_id, "RUN") if run_id else path, response.status_code)
    return response


run_id = ""
AUTOMATION = "/api/automations/v2/demo-weekly-report"
run_id = call("post", f"{AUTOMATION}/run_now").json()["run"]["run_id"]
for path in (
    "/api/automations/v2",
    "/api/automations/v2/runs",
    f"{AUTOMATION}/runs",
    f"{AUTOMATION}/handoffs",
    "/api/audit/events",
    "/api/audit/verify",
    f"/api/automations/v2/runs/{run_id}",
    f"/api/automations/v2/runs/{run_id}/tasks/draft/reset_preview",
):
    call("get", path)
call("get", "/api/approvals/pending", user="reviewer")
call("post", f"/api/automations/v2/runs/{run_id}/pause")
call("post", f"/api/automations/v2/runs/{run_id}/resume")
call("post", f"{AUTOMATION}/pause")
call("post", f"{AUTOMATION}/resume", resume_runs=True)
call("post", f"/api/automations/v2/runs/{run_id}/cancel")
call("post", f"/api/automations/v2/runs/{run_id}/tasks/draft/retry")

# Triggers: a schedule and a webhook trigger through the API, the hook itself, and the beat's
# firing of a due schedule (SQLite has no FOR UPDATE SKIP LOCKED; its writers are serialised).
from datetime import timedelta  # noqa: E402

from django.utils import timezone  # noqa: E402

from automations.models import Schedule  # noqa: E402
from automations.triggers.schedules import schedules_fire_due  # noqa: E402

call("post", f"{AUTOMATION}/resume")
schedule_id = call("post", f"{AUTOMATION}/schedules", cron="@daily").json()["schedule_id"]
call("get", f"{AUTOMATION}/schedules")
token = call("post", f"{AUTOMATION}/webhook_triggers", name="smoke").json()["token"]
call("get", f"{AUTOMATION}/webhook_triggers")
hook = client.post(f"/api/hooks/{token}", {}, content_type="application/json")
print("POST /api/hooks/TOKEN", hook.status_code)
Schedule.objects.filter(schedule_id=schedule_id).update(
    next_fire_at=timezone.now() - timedelta(seconds=1)
)
print("FIRED", len(schedules_fire_due()))
