"""`GET /api/automations/v2/{id}/handoffs`: the original's listing (three dirs, 512-entry cap,
only parseable artifacts, sorted by `created_at_ms`, counts), confined to `workspace_root`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from automations.flow import handoff_dirs
from automations.handoffs import listing as listing_module
from automations.handoffs import writer as handoffs_module
from automations.handoffs.writer import build_artifact, write_artifact
from automations.models import Automation, LifecycleEvent, Run, RunNode
from tests.factories import AUTOMATIONS_URL as URL
from tests.factories import create_automation as create
from tests.factories import start_runs

CONFIG = {
    "inbox_dir": "handoffs/inbox",
    "approved_dir": "handoffs/approved",
    "archived_dir": "handoffs/archived",
    "auto_approve": False,
}


@pytest.fixture
def root(workspaces_dir) -> Path:
    """A workspace root inside the operator's workspace (acme/ops) directory; `tmp_path / x` is
    outside every workspace's directory."""
    path = workspaces_dir / "acme" / "ops" / "workspace"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def weekly(operator, root):
    """An automation with handoff dirs under `root` (not created yet) and one run."""
    create(operator, automation_id="weekly", workspace_root=str(root), handoff_config=CONFIG)
    (run_id,) = start_runs(operator, "weekly", 1)
    return Run.objects.get(run_id=run_id)


def artifact(run: Run, created_at_ms, **overrides) -> dict:
    """An artifact exactly as the engine builds it, with a chosen creation time."""
    body = build_artifact(run, "draft", {"text": "hello"}, {"artifact_type": "brief"})
    return {**body, "created_at_ms": created_at_ms, **overrides}


def nested(depth: int):
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def write(directory: Path, body, name: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or f"{body['handoff_id']}.json")
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


def handoffs(member, automation_id="weekly"):
    return member.client().get(f"{URL}/{automation_id}/handoffs")


@pytest.mark.django_db
class TestListing:
    def test_three_dirs_sorted_with_counts(self, operator, viewer, root, weekly):
        inbox = [artifact(weekly, ms) for ms in (300, 100, 200)]
        for body in inbox:
            write(root / "handoffs/inbox", body)
        approved = artifact(weekly, 50, consumed_by_run_id=None)
        write(root / "handoffs/approved", approved)
        response = handoffs(viewer)
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["automation_id"] == "weekly"
        assert body["workspace_root"] == str(root)
        assert body["handoff_config"] == CONFIG
        assert [a["created_at_ms"] for a in body["inbox"]] == [100, 200, 300]
        assert body["inbox"][0] == next(a for a in inbox if a["created_at_ms"] == 100)
        assert body["approved"] == [{k: v for k, v in approved.items() if v is not None}]
        assert body["archived"] == []
        assert body["counts"] == {"inbox": 3, "approved": 1, "archived": 0, "total": 4}
        assert body["skipped"] == {"inbox": 0, "approved": 0, "archived": 0, "total": 0}
        assert body["truncated"] == {"inbox": False, "approved": False, "archived": False}

    def test_artifact_written_by_the_engine_is_listed(self, operator, root, weekly):
        RunNode.objects.filter(run=weekly, node_id="draft").update(output={"text": "hello"})
        path = write_artifact(run_id=weekly.run_id, node_id="draft")
        assert path.parent == root / "handoffs/inbox"  # auto_approve is off
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left
        listed = handoffs(operator).json()["inbox"]
        assert listed == [json.loads(path.read_text())]
        assert listed[0]["source_run_id"] == weekly.run_id
        assert listed[0]["metadata"]["output"] == {"text": "hello"}

    def test_optional_fields_and_unknown_keys(self, operator, root, weekly):
        body = artifact(weekly, 5, content_path="out/a.md", consumed_at_ms=9, colour="red")
        body["metadata"] = None
        write(root / "handoffs/archived", body)
        (listed,) = handoffs(operator).json()["archived"]
        assert listed["content_path"] == "out/a.md"
        assert listed["consumed_at_ms"] == 9
        assert "metadata" not in listed
        assert "colour" not in listed

    def test_missing_dirs_are_empty_and_not_created(self, operator, root, weekly):
        body = handoffs(operator).json()
        assert body["inbox"] == body["approved"] == body["archived"] == []
        assert body["counts"]["total"] == 0
        assert list(root.iterdir()) == []  # reading created nothing

    def test_missing_workspace_root_is_empty(self, operator):
        create(operator, automation_id="plain")
        body = handoffs(operator, "plain").json()
        assert body["workspace_root"] is None
        assert body["handoff_config"]["inbox_dir"] == "shared/handoffs/inbox"
        assert body["handoff_config"]["auto_approve"] is True
        assert body["counts"] == {"inbox": 0, "approved": 0, "archived": 0, "total": 0}

    def test_default_dirs(self, operator, root):
        create(operator, automation_id="defaults", workspace_root=str(root), handoff_config={})
        (run_id,) = start_runs(operator, "defaults", 1)
        write(root / "shared/handoffs/approved", artifact(Run.objects.get(run_id=run_id), 1))
        assert handoffs(operator, "defaults").json()["counts"]["approved"] == 1

    def test_equal_times_are_ordered_by_handoff_id(self, operator, root, weekly):
        for handoff_id in ("hoff-c", "hoff-a", "hoff-b"):
            write(root / "handoffs/inbox", artifact(weekly, 7, handoff_id=handoff_id))
        listed = handoffs(operator).json()["inbox"]
        assert [a["handoff_id"] for a in listed] == ["hoff-a", "hoff-b", "hoff-c"]


@pytest.mark.django_db
class TestSkippedAndCapped:
    def test_unparseable_and_foreign_entries(self, operator, root, tmp_path, weekly):
        inbox = root / "handoffs/inbox"
        good = artifact(weekly, 1)
        write(inbox, good)
        bad = {
            "broken.json": "{not json",
            "array.json": "[1, 2]",
            "nan.json": json.dumps(artifact(weekly, 2)).replace('"hello"', "NaN"),
            "latin1.json": b"\xff\xfe",
            "deep.json": '{"a": ' * 5000 + "1" + "}" * 5000,
            "deep-metadata.json": artifact(weekly, 2, metadata=nested(40)),
            "missing.json": {k: v for k, v in artifact(weekly, 3).items() if k != "source_run_id"},
            "string-ms.json": artifact(weekly, "4"),
            "bool-ms.json": artifact(weekly, True),
            "negative-ms.json": artifact(weekly, -1),
            "float-ms.json": artifact(weekly, 6.5),
            "null-id.json": artifact(weekly, 7, handoff_id=None),
            "typed-optional.json": artifact(weekly, 8, content_path=5),
            "surrogate.json": json.dumps(artifact(weekly, 9)).replace("hello", "\\ud800"),
        }
        for name, body in bad.items():
            if isinstance(body, bytes):
                inbox.joinpath(name).write_bytes(body)
            else:
                write(inbox, body, name)
        (inbox / "dir.json").mkdir()
        outside = write(tmp_path / "outside", artifact(weekly, 10))
        (inbox / "link.json").symlink_to(outside)  # a file symlink is never followed
        os.mkfifo(inbox / "fifo.json")  # must not hang the request
        (inbox / "notes.txt").write_text("not an artifact")
        (inbox / ".handoff-123.tmp").write_text("{}")
        body = handoffs(operator).json()
        assert body["inbox"] == [good]
        assert body["counts"]["inbox"] == 1
        assert body["skipped"]["inbox"] == len(bad) + 3  # + dir.json, link.json, fifo.json
        assert body["skipped"]["total"] == body["skipped"]["inbox"]

    def test_oversized_artifact_is_skipped(self, operator, root, weekly, monkeypatch):
        monkeypatch.setattr(listing_module, "MAX_ARTIFACT_BYTES", 2000)
        write(root / "handoffs/inbox", artifact(weekly, 1, metadata={"blob": "x" * 3000}))
        write(root / "handoffs/inbox", artifact(weekly, 2))
        body = handoffs(operator).json()
        assert [a["created_at_ms"] for a in body["inbox"]] == [2]
        assert body["skipped"]["inbox"] == 1

    def test_at_most_512_entries_per_dir(self, operator, root, weekly):
        inbox = root / "handoffs/inbox"
        for n in range(600):
            write(inbox, artifact(weekly, n, handoff_id=f"hoff-{n:04d}"))
        write(root / "handoffs/approved", artifact(weekly, 1))
        body = handoffs(operator).json()
        assert body["counts"]["inbox"] == 512
        assert body["counts"]["total"] == 513
        assert body["truncated"] == {"inbox": True, "approved": False, "archived": False}
        times = [a["created_at_ms"] for a in body["inbox"]]
        assert times == sorted(times)

    def test_non_json_entries_count_towards_the_cap(self, operator, root, weekly):
        inbox = root / "handoffs/inbox"
        for n in range(512):
            (inbox / f"note-{n}.txt").parent.mkdir(parents=True, exist_ok=True)
            (inbox / f"note-{n}.txt").write_text("x")
        write(inbox, artifact(weekly, 1))
        body = handoffs(operator).json()
        # 513 entries: which 512 are read depends on directory order, as in the original.
        assert body["counts"]["inbox"] in (0, 1)
        assert body["truncated"]["inbox"] is True

    def test_exactly_512_is_not_truncated(self, operator, root, weekly):
        for n in range(512):
            write(root / "handoffs/inbox", artifact(weekly, n, handoff_id=f"hoff-{n:04d}"))
        body = handoffs(operator).json()
        assert body["counts"]["inbox"] == 512
        assert body["truncated"]["inbox"] is False


@pytest.mark.django_db
class TestConfinement:
    def test_symlink_created_after_save_is_refused(self, operator, root, tmp_path, weekly):
        outside = tmp_path / "outside"
        write(outside / "inbox", artifact(weekly, 1))
        (root / "handoffs").symlink_to(outside)  # handoffs/inbox now leads out of the root
        response = handoffs(operator)
        assert response.status_code == 409
        body = response.json()
        assert body["code"] == "AUTOMATION_V2_HANDOFF_DIR_UNSAFE"
        assert body["automationID"] == "weekly"
        assert {e["field"] for e in body["errors"]} == {
            "handoff_config.inbox_dir",
            "handoff_config.approved_dir",
            "handoff_config.archived_dir",
        }
        assert "inbox" not in body

    def test_symlink_swapped_in_after_the_check_is_not_followed(
        self, operator, root, tmp_path, weekly, monkeypatch
    ):
        """The window between resolving the dirs and opening them: walked without following."""
        automation = Automation.objects.get(automation_id="weekly")
        checked = handoff_dirs(automation.workspace_root, automation.handoff_config)
        outside = tmp_path / "outside"
        write(outside / "inbox", artifact(weekly, 1))
        (root / "handoffs").symlink_to(outside)
        monkeypatch.setattr(listing_module, "handoff_dirs", lambda *args: checked)
        response = handoffs(operator)
        assert response.status_code == 409
        assert response.json()["code"] == "AUTOMATION_V2_HANDOFF_DIR_UNSAFE"
        assert response.json()["errors"][0]["field"] == "handoff_config.inbox_dir"

    def test_final_component_swapped_for_a_symlink(
        self, operator, root, tmp_path, weekly, monkeypatch
    ):
        automation = Automation.objects.get(automation_id="weekly")
        checked = handoff_dirs(automation.workspace_root, automation.handoff_config)
        outside = tmp_path / "outside"
        write(outside, artifact(weekly, 1))
        (root / "handoffs").mkdir()
        (root / "handoffs/approved").symlink_to(outside)
        monkeypatch.setattr(listing_module, "handoff_dirs", lambda *args: checked)
        response = handoffs(operator)
        assert response.status_code == 409
        assert response.json()["errors"][0]["field"] == "handoff_config.approved_dir"

    def test_symlink_inside_the_root_is_followed(self, operator, root, weekly):
        real = root / "real-handoffs"
        write(real / "inbox", artifact(weekly, 1))
        (root / "handoffs").symlink_to(real)
        body = handoffs(operator).json()
        assert body["counts"]["inbox"] == 1

    def test_a_file_where_a_dir_should_be_is_empty(self, operator, root, weekly):
        (root / "handoffs").write_text("not a dir")
        assert handoffs(operator).json()["counts"]["total"] == 0


@pytest.mark.django_db
class TestWriterConfinement:
    """`write_artifact` walks the resolved dirs with `O_NOFOLLOW`: a dir swapped for a symlink
    between `handoff_dirs` and the write fails the handoff instead of writing outside."""

    @pytest.mark.parametrize("swapped", ["handoffs", "handoffs/inbox"])
    def test_dir_swapped_for_a_symlink_fails_the_handoff(
        self, root, tmp_path, weekly, monkeypatch, swapped
    ):
        automation = Automation.objects.get(automation_id="weekly")
        checked = handoff_dirs(automation.workspace_root, automation.handoff_config)
        outside = tmp_path / "outside"
        (outside / "inbox").mkdir(parents=True)
        (root / swapped).parent.mkdir(parents=True, exist_ok=True)
        (root / swapped).symlink_to(outside if swapped == "handoffs" else outside / "inbox")
        monkeypatch.setattr(handoffs_module, "handoff_dirs", lambda *args: checked)
        assert write_artifact(run_id=weekly.run_id, node_id="draft") is None
        assert list(outside.rglob("*")) == [outside / "inbox"]
        events = LifecycleEvent.objects.filter(run=weekly, event__startswith="handoff_")
        (failed,) = events
        assert failed.event == "handoff_failed"
        assert "symlink" in failed.reason

    def test_auto_approve_into_a_swapped_approved_dir_fails(
        self, root, tmp_path, weekly, monkeypatch
    ):
        Run.objects.filter(pk=weekly.pk).update(
            automation_snapshot={
                **weekly.automation_snapshot,
                "handoff_config": {**CONFIG, "auto_approve": True},
            }
        )
        checked = handoff_dirs(str(root), CONFIG)
        outside = tmp_path / "outside"
        outside.mkdir()
        (root / "handoffs").mkdir()
        (root / "handoffs/approved").symlink_to(outside)
        monkeypatch.setattr(handoffs_module, "handoff_dirs", lambda *args: checked)
        assert write_artifact(run_id=weekly.run_id, node_id="draft") is None
        assert list(outside.iterdir()) == []
        assert LifecycleEvent.objects.filter(run=weekly, event="handoff_failed").exists()


@pytest.mark.django_db
class TestAccess:
    def test_other_workspace_and_missing_are_404(self, operator, outsider, weekly):
        for member, automation_id in ((outsider, "weekly"), (operator, "nope")):
            response = handoffs(member, automation_id)
            assert response.status_code == 404
            assert response.json() == {
                "error": "Automation not found",
                "code": "AUTOMATION_V2_NOT_FOUND",
                "automationID": automation_id,
            }

    def test_every_role_and_agents_can_read(self, viewer, reviewer, agent, weekly):
        for member in (viewer, reviewer, agent):
            assert handoffs(member).status_code == 200

    def test_anonymous_is_401(self, client, weekly):
        assert client.get(f"{URL}/weekly/handoffs").status_code == 401
