"""Confined workspace files (issue 14): each workspace's files live in its own directory
`<FLOWGATE_WORKSPACES_DIR>/<org slug>/<workspace slug>/`, and `workspace_root` must lie inside it.

The findings, as first found on `main` (where `workspace_root` only had to be absolute):
a second tenant that set the same root read the first tenant's artifacts and planted its own in
their listing; a root anywhere on disk made the worker create directories and write there; the
`skipped` counters told which `*.json` files existed anywhere.
"""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from automations.handoffs.writer import write_artifact
from automations.models import Automation, LifecycleEvent, Run, RunNode
from automations.services import run_start
from automations.workspace_files import workspace_dir
from governance.actors import Actor
from governance.models import Membership, Role
from tests.factories import simple_agents, simple_flow

URL = "/api/automations/v2"
HANDOFFS = {"inbox_dir": "inbox", "approved_dir": "approved", "archived_dir": "archived"}

pytestmark = pytest.mark.django_db


@pytest.fixture
def globex(make_member):
    """An operator of another organisation's workspace: the second tenant."""
    return make_member("globex/main", "gus-globex", role=Role.OPERATOR)


def create(member, root: str, automation_id: str = "weekly"):
    body = {
        "automation_id": automation_id,
        "name": "Weekly report",
        "agents": simple_agents(),
        "flow": simple_flow(),
        "workspace_root": root,
        "handoff_config": {**HANDOFFS, "auto_approve": False},
    }
    return member.client().post(URL, body, format="json")


def refused_field(response) -> list[str]:
    assert response.status_code == 400, response.json()
    return [error["field"] for error in response.json()["errors"]]


def run_writing_a_handoff(member, automation_id: str = "weekly") -> Run:
    membership = Membership.objects.select_related("user", "workspace__organization").get(
        user=member.user, workspace=member.workspace
    )
    automation = Automation.objects.get(workspace=member.workspace, automation_id=automation_id)
    run = run_start(actor=Actor.for_member(membership), automation=automation)
    first = run.nodes.order_by("pk").first()
    RunNode.objects.filter(pk=first.pk).update(output={"text": f"secret of {member.workspace}"})
    write_artifact(run_id=run.run_id, node_id=first.node_id)
    return run


def test_a_second_tenant_cannot_set_the_first_tenants_root(operator, globex, workspaces_dir):
    """As first found: globex set acme's absolute root and listed acme's artifacts."""
    assert create(operator, "shared").status_code == 201
    run_writing_a_handoff(operator)
    acme_root = workspace_dir(operator.workspace) / "shared"
    assert len(list((acme_root / "inbox").iterdir())) == 1

    for attempt in (str(acme_root), "../../acme/ops/shared", f"{workspaces_dir}/acme/ops"):
        assert refused_field(create(globex, attempt)) == ["workspace_root"]
    assert not Automation.objects.filter(workspace=globex.workspace).exists()


def test_the_same_relative_root_is_two_directories(operator, globex, workspaces_dir):
    """Both tenants name `shared`: each reads and writes only its own; neither can plant
    artifacts in the other's listing."""
    assert create(operator, "shared").status_code == 201
    assert create(globex, "shared").status_code == 201
    run_writing_a_handoff(operator)
    run_writing_a_handoff(globex)

    for member in (operator, globex):
        listing = member.client().get(f"{URL}/weekly/handoffs").json()
        [artifact] = listing["inbox"]
        assert artifact["metadata"]["output"] == {"text": f"secret of {member.workspace}"}
        assert listing["skipped"]["total"] == 0
    assert workspace_dir(globex.workspace) == workspaces_dir / "globex" / "main"


def test_a_root_anywhere_on_disk_is_refused_and_nothing_is_written_there(
    operator, workspaces_dir, tmp_path
):
    """As first found: a root anywhere made the worker (root) create directories there."""
    elsewhere = tmp_path / "elsewhere"
    response = create(operator, str(elsewhere))
    assert refused_field(response) == ["workspace_root"]
    assert "workspace_root" in response.json()["error"]
    assert not elsewhere.exists()


def test_a_row_saved_before_confinement_writes_and_reads_nothing_outside(
    operator, workspaces_dir, tmp_path
):
    """A root outside (a row from before the migration, or a run's old snapshot) is refused at
    use: the handoff fails, the listing is a 409, and nothing outside is created or read."""
    assert create(operator, "shared").status_code == 201
    outside = tmp_path / "outside"
    Automation.objects.filter(automation_id="weekly").update(workspace_root=str(outside))

    run = run_writing_a_handoff(operator)

    failed = LifecycleEvent.objects.get(run=run, event="handoff_failed")
    assert "workspace_root" in failed.reason
    assert not outside.exists()
    response = operator.client().get(f"{URL}/weekly/handoffs")
    assert response.status_code == 409
    assert response.json()["code"] == "AUTOMATION_V2_HANDOFF_DIR_UNSAFE"


def test_files_outside_cannot_be_probed(operator, workspaces_dir, tmp_path):
    """As first found, `skipped` counted the `*.json` files of any directory. Now a root outside
    is refused with the same answer whether or not anything exists there."""
    probed = tmp_path / "probed"
    (probed / "inbox").mkdir(parents=True)
    (probed / "inbox" / "x.json").write_text("{}")
    answers = []
    for target in (probed, tmp_path / "missing"):
        response = create(operator, str(target), automation_id=f"probe-{target.name}")
        refused_field(response)
        answers.append(response.json()["errors"])
    assert answers[0] == answers[1]

    assert create(operator, "shared").status_code == 201
    Automation.objects.filter(automation_id="weekly").update(workspace_root=str(probed))
    with_files = operator.client().get(f"{URL}/weekly/handoffs").json()
    Automation.objects.filter(automation_id="weekly").update(workspace_root=str(tmp_path / "no"))
    without = operator.client().get(f"{URL}/weekly/handoffs").json()
    assert with_files == without
    assert "skipped" not in with_files


def test_an_absolute_root_inside_the_workspace_dir_is_accepted(operator, workspaces_dir):
    home = workspace_dir(operator.workspace)
    assert create(operator, str(home / "reports")).status_code == 201
    assert create(operator, "../ops/reports", automation_id="relative").status_code == 201


def test_the_migration_confines_existing_roots(operator, workspaces_dir):
    assert create(operator, "shared").status_code == 201
    assert create(operator, "kept", automation_id="kept").status_code == 201
    inside = str(workspace_dir(operator.workspace) / "kept")
    Automation.objects.filter(automation_id="weekly").update(workspace_root="/srv/../srv/acme")
    Automation.objects.filter(automation_id="kept").update(workspace_root=inside)

    migration = importlib.import_module(
        "automations.migrations.0007_workspace_root_inside_workspace_dir"
    )
    migration.confine_roots(apps, None)

    roots = dict(Automation.objects.values_list("automation_id", "workspace_root"))
    assert roots == {"weekly": "srv/acme", "kept": inside}
