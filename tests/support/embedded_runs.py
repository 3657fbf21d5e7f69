"""Run by tests/config/test_embedded_default.py in a subprocess on the embedded default
(SQLite, filesystem broker): creates an echo-only automation in the demo workspace and starts
six runs of it back to back through the API, for a real worker to execute concurrently.

Prints the run ids, one a line.
"""

import django

django.setup()

from django.test import Client  # noqa: E402

from governance.models import User  # noqa: E402
from governance.services import token_issue, workspace_get  # noqa: E402

RUNS = 6
# A fan-out and a join: several node tasks of one run commit at once, as well as of six runs.
FLOW = {
    "automation_id": "embedded-fanout",
    "name": "Embedded fan-out",
    "agents": [
        {
            "agent_id": "echo",
            "template_id": "echo",
            "display_name": "Echo",
            "model_policy": {"provider": "echo", "model": "echo-1"},
        }
    ],
    "flow": {
        "nodes": [
            {"node_id": "start", "kind": "agent", "agent_id": "echo", "objective": "start"},
            *(
                {
                    "node_id": f"branch{index}",
                    "kind": "agent",
                    "agent_id": "echo",
                    "depends_on": ["start"],
                    "objective": f"branch {index}",
                }
                for index in range(3)
            ),
            {
                "node_id": "join",
                "kind": "agent",
                "agent_id": "echo",
                "depends_on": [f"branch{index}" for index in range(3)],
                "objective": "join",
            },
        ]
    },
    "execution": {"max_parallel": 3},
}

workspace = workspace_get("demo/main")
token = token_issue(user=User.objects.get(username="owner"), workspace=workspace)[1]
client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
created = client.post("/api/automations/v2", FLOW, content_type="application/json")
assert created.status_code == 201, created.content
for _ in range(RUNS):
    response = client.post(
        "/api/automations/v2/embedded-fanout/run_now", content_type="application/json"
    )
    assert response.status_code in {200, 201}, response.content
    print(response.json()["run"]["run_id"])
