"""Operator commands keep their exact names and arguments; they are idempotent."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from guardian.shortcuts import get_perms

from automations.models import Automation
from governance.models import ApiToken, Membership, User, Workspace
from governance.services import member_add, workspace_create
from governance.tokens import token_digest


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
class TestCommands:
    def test_create_workspace_is_idempotent(self):
        assert "created acme/ops" in run("create_workspace", "acme/ops")
        assert "exists acme/ops" in run("create_workspace", "acme/ops")
        assert Workspace.objects.count() == 1

    @pytest.mark.parametrize(
        "path",
        [
            "no-slash",
            "acme/",
            "acme/ops/more",
            "ac me/ops",
            "acme/o.ps",
            "acme/ops\x00",
            "acme/o\nps",
            "acme/" + "x" * 65,
            "x" * 65 + "/ops",
        ],
    )
    def test_create_workspace_rejects_bad_paths(self, path):
        with pytest.raises(CommandError, match="two slugs"):
            run("create_workspace", path)
        assert not Workspace.objects.exists()

    def test_create_workspace_accepts_64_character_slugs(self):
        path = "o" * 64 + "/" + "w" * 64
        assert f"created {path}" in run("create_workspace", path)

    @pytest.mark.parametrize("name", ["n" * 201, "bad\x00name"])
    def test_create_workspace_rejects_bad_names(self, name):
        with pytest.raises(CommandError, match="printable characters"):
            run("create_workspace", "acme/ops", "--name", name)
        assert not Workspace.objects.exists()

    @pytest.mark.parametrize("username", ["u" * 151, "bad name", "a\x00b", ""])
    def test_add_member_rejects_bad_usernames(self, username):
        run("create_workspace", "acme/ops")
        with pytest.raises(CommandError, match="username"):
            run("add_member", "acme/ops", username, "--role", "viewer")
        assert not User.objects.exists()

    def test_add_member_creates_user_role_and_clearances(self):
        run("create_workspace", "acme/ops")
        run(
            "add_member",
            "acme/ops",
            "rita",
            "--role",
            "reviewer",
            "--kind",
            "human",
            "--password",
            "pw-123456",
            "--clearance",
            "financial_record",
            "--clearance",
            "internal",
        )
        user = User.objects.get(username="rita")
        assert user.check_password("pw-123456")
        assert Membership.objects.get(user=user).role == "reviewer"
        workspace = Workspace.objects.get()
        assert set(get_perms(user, workspace)) == {"review_financial_record", "review_internal"}
        run("add_member", "acme/ops", "rita", "--role", "admin", "--kind", "human")
        assert Membership.objects.get(user=user).role == "admin"
        assert User.objects.filter(username="rita").count() == 1

    def test_add_member_takes_several_clearances_after_one_option(self):
        run("create_workspace", "acme/ops")
        run(
            "add_member",
            "acme/ops",
            "rita",
            "--role",
            "reviewer",
            "--clearance",
            "financial_record",
            "internal",
            "--clearance",
            "executive",
        )
        user = User.objects.get(username="rita")
        assert set(get_perms(user, Workspace.objects.get())) == {
            "review_financial_record",
            "review_internal",
            "review_executive",
        }

    def test_add_member_refuses_unknown_clearances(self):
        run("create_workspace", "acme/ops")
        with pytest.raises(CommandError, match="invalid choice"):
            run("add_member", "acme/ops", "rita", "--role", "reviewer", "--clearance", "secret")

    def test_add_member_kind_cannot_change(self):
        run("create_workspace", "acme/ops")
        run("add_member", "acme/ops", "bot", "--role", "operator", "--kind", "agent")
        with pytest.raises(CommandError):
            run("add_member", "acme/ops", "bot", "--role", "operator", "--kind", "human")

    def test_add_member_unknown_workspace(self):
        with pytest.raises(CommandError):
            run("add_member", "acme/none", "x", "--role", "viewer")

    def test_issue_token_prints_only_the_token(self):
        run("create_workspace", "acme/ops")
        run("add_member", "acme/ops", "bot", "--role", "operator", "--kind", "agent")
        output = run("issue_token", "bot", "--workspace", "acme/ops")
        raw = output.strip()
        assert output == raw + "\n"
        assert ApiToken.objects.get(digest=token_digest(raw)).user.username == "bot"

    def test_issue_token_for_non_member_fails(self):
        run("create_workspace", "acme/ops")
        run("create_workspace", "acme/dev")
        run("add_member", "acme/dev", "bot", "--role", "operator", "--kind", "agent")
        with pytest.raises(CommandError):
            run("issue_token", "bot", "--workspace", "acme/ops")

    def test_seed_demo_refuses_without_debug_or_force(self, settings):
        settings.DEBUG = False
        with pytest.raises(CommandError, match="--force"):
            run("seed_demo")
        assert not User.objects.exists()
        assert not Workspace.objects.exists()

    def test_seed_demo_runs_with_debug_on(self, settings):
        settings.DEBUG = True
        assert "Demo workspace demo/main is ready." in run("seed_demo")

    def test_seed_demo_is_idempotent_and_prints_working_tokens(self, client):
        first = run("seed_demo", "--force")
        second = run("seed_demo", "--force")
        assert Automation.objects.filter(automation_id="demo-weekly-report").count() == 1
        assert User.objects.filter(username__in=["owner", "reviewer", "agent"]).count() == 3
        assert User.objects.filter(username="operator", is_superuser=False).exists()
        assert "flowgate-owner" in second
        token = demo_token(second, "agent")
        response = client.get(
            "/api/automations/v2/demo-weekly-report", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        assert response.status_code == 200
        assert demo_token(first, "agent") == token

    def test_seed_demo_keeps_the_printed_tokens_across_restarts(self, client, demo_tokens_file):
        """Issue 16: every `./flowgate run` restart revoked the printed demo tokens. They are
        kept (raw only in the 0600 token file; the database still holds digests only)."""
        first = run("seed_demo", "--force")
        second = run("seed_demo", "--force")
        for username in ("owner", "reviewer", "operator", "agent"):
            raw = demo_token(first, username)
            assert demo_token(second, username) == raw
            response = client.get("/api/automations/v2", HTTP_AUTHORIZATION=f"Bearer {raw}")
            assert response.status_code == 200, username
            row = ApiToken.objects.get(digest=token_digest(raw))
            assert row.revoked_at is None
            assert raw not in (row.digest, row.prefix)
        assert (
            ApiToken.objects.filter(user__demo_account=True, revoked_at__isnull=False).count() == 0
        )
        assert demo_tokens_file.stat().st_mode & 0o777 == 0o600

    def test_seed_demo_replaces_a_stored_token_that_was_revoked(self, client):
        raw = demo_token(run("seed_demo", "--force"), "owner")
        ApiToken.objects.filter(digest=token_digest(raw)).update(revoked_at="2026-01-01T00:00Z")
        fresh = demo_token(run("seed_demo", "--force"), "owner")
        assert fresh != raw
        assert (
            client.get("/api/automations/v2", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
        )
        assert (
            client.get("/api/automations/v2", HTTP_AUTHORIZATION=f"Bearer {fresh}").status_code
            == 200
        )

    def test_seed_demo_issues_new_tokens_when_the_file_is_lost(self, demo_tokens_file):
        raw = demo_token(run("seed_demo", "--force"), "agent")
        demo_tokens_file.unlink()
        fresh = demo_token(run("seed_demo", "--force"), "agent")
        assert fresh != raw
        assert ApiToken.objects.get(digest=token_digest(raw)).revoked_at is not None


def demo_token(output: str, username: str) -> str:
    """The API token `seed_demo` printed for `username`."""
    return next(
        line.split()[-1]
        for line in output.splitlines()
        if line.strip().startswith(f"{username} ") and "fg_" in line
    )


@pytest.mark.django_db
class TestSeedDemoLeavesOtherUsersAlone:
    def test_an_existing_owner_is_left_untouched_even_with_force(self):
        """Issue 13: `seed_demo --force` reset an existing `owner` to the published password
        and made it a superuser."""
        workspace, _ = workspace_create(path="acme/ops")
        member_add(workspace=workspace, username="owner", role="viewer", password="her-own-pw")
        before = User.objects.get(username="owner")

        with pytest.raises(CommandError, match="existing user\\(s\\) owner"):
            run("seed_demo", "--force")

        after = User.objects.get(username="owner")
        assert after.check_password("her-own-pw")
        assert (after.password, after.is_superuser, after.is_staff) == (
            before.password,
            False,
            False,
        )
        assert not Workspace.objects.filter(slug="main").exists()

    def test_the_demo_has_a_staff_operator_who_is_not_a_superuser(self):
        run("seed_demo", "--force")
        operator = User.objects.get(username="operator")
        assert (operator.is_staff, operator.is_superuser, operator.demo_account) == (
            True,
            False,
            True,
        )
        assert operator.check_password("flowgate-operator")
        assert User.objects.get(username="owner").is_superuser
