"""Tokens (hashed, revocable, workspace-bound), sessions with CSRF, workspace resolution."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from governance.models import ApiToken, PrincipalKind, Role
from governance.services import token_issue, token_revoke
from governance.tokens import token_digest
from tests.factories import AUTOMATIONS_URL as URL


@pytest.mark.django_db
class TestTokens:
    def test_only_the_digest_is_stored(self, operator):
        token = ApiToken.objects.get(user=operator.user)
        assert operator.token not in (token.digest, token.prefix)
        assert token.digest == token_digest(operator.token)
        assert len(token.digest) == 64

    def test_valid_token_authenticates(self, operator):
        assert operator.client().get(URL).status_code == 200

    def test_revoked_token_is_401(self, operator):
        token_revoke(token=ApiToken.objects.get(user=operator.user))
        response = operator.client().get(URL)
        assert response.status_code == 401
        assert response.json()["code"] == "AUTHENTICATION_REQUIRED"

    def test_unknown_token_is_401(self, db):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Bearer fg_not-a-real-token")
        response = client.get(URL)
        assert response.status_code == 401
        assert response.json()["code"] == "AUTHENTICATION_REQUIRED"

    def test_no_credentials_is_401(self, db):
        response = APIClient().get(URL)
        assert response.status_code == 401
        assert response.json()["code"] == "AUTHENTICATION_REQUIRED"
        assert response["WWW-Authenticate"] == "Bearer"

    def test_token_is_bound_to_its_workspace(self, make_member, operator):
        make_member("globex/ops", operator.user.username, role=Role.ADMIN)
        client = operator.client()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {operator.token}", HTTP_X_WORKSPACE="globex/ops"
        )
        response = client.get(URL)
        assert response.status_code == 404
        assert response.json()["code"] == "WORKSPACE_NOT_FOUND"

    def test_token_of_removed_member_stops_working(self, operator):
        from governance.services import member_remove

        member_remove(membership=operator.user.memberships.get())
        response = operator.client().get(URL)
        assert response.status_code == 401
        assert response.json()["code"] == "AUTHENTICATION_REQUIRED"
        assert response["WWW-Authenticate"] == "Bearer"

    def test_revocation_is_audited(self, operator):
        token = ApiToken.objects.get(user=operator.user)
        token_revoke(token=token)
        token_revoke(token=token)
        from governance.models import AuditEvent

        assert AuditEvent.objects.filter(event_type="governance.token.revoked").count() == 1

    def test_agent_token_authenticates_as_agent(self, agent):
        assert agent.client().get(URL).status_code == 200

    def test_issue_requires_membership(self, operator, other_workspace):
        from governance.errors import InvalidRequest

        with pytest.raises(InvalidRequest):
            token_issue(user=operator.user, workspace=other_workspace)


@pytest.mark.django_db
class TestSessions:
    def login(self, member) -> APIClient:
        client = APIClient(enforce_csrf_checks=True)
        assert client.login(username=member.user.username, password="pw-for-tests")
        return client

    def test_session_get_works_for_single_workspace_member(self, operator):
        assert self.login(operator).get(URL).status_code == 200

    def test_session_post_without_csrf_is_refused(self, operator):
        response = self.login(operator).post(URL, {"name": "x"}, format="json")
        assert response.status_code == 403
        assert "CSRF" in response.json()["error"]

    def test_session_post_with_the_csrf_token_is_accepted(self, operator):
        client = self.login(operator)
        # Any Django page that renders a form sets the cookie; the admin login page does.
        client.get("/admin/login/")
        token = client.cookies["csrftoken"].value
        response = client.post(
            URL, {"name": "x", "flow": {"nodes": []}}, format="json", HTTP_X_CSRFTOKEN=token
        )
        assert response.status_code == 201, response.json()
        assert response.json()["created_by"] == operator.user.username
        forged = client.post(
            URL, {"name": "y", "flow": {"nodes": []}}, format="json", HTTP_X_CSRFTOKEN="x" * 32
        )
        assert forged.status_code == 403

    def test_several_workspaces_need_the_header(self, make_member, operator):
        make_member("acme/other", operator.user.username, role=Role.VIEWER)
        client = self.login(operator)
        response = client.get(URL)
        assert response.status_code == 400
        assert response.json()["code"] == "WORKSPACE_REQUIRED"
        assert client.get(URL, HTTP_X_WORKSPACE="acme/ops").status_code == 200
        assert client.get(URL, HTTP_X_WORKSPACE="acme/other").status_code == 200

    def test_header_naming_a_foreign_workspace_is_404(self, operator, outsider):
        response = self.login(operator).get(URL, HTTP_X_WORKSPACE="globex/ops")
        assert response.status_code == 404
        assert response.json()["code"] == "WORKSPACE_NOT_FOUND"

    @pytest.mark.parametrize(
        "header",
        ["nonsense", "acme/", "/ops", "acme/ops/x", "ac me/ops", "acme/o\x00ps", "a/" + "b" * 65],
    )
    def test_malformed_header_is_400(self, operator, header):
        response = self.login(operator).get(URL, HTTP_X_WORKSPACE=header)
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_WORKSPACE"

    def test_agents_cannot_log_in_with_a_password(self, make_member):
        bot = make_member("acme/ops", "bot", role=Role.OPERATOR, kind=PrincipalKind.AGENT)
        bot.user.set_password("secret-pass")
        bot.user.save()
        assert not APIClient().login(username="bot", password="secret-pass")

    def test_identity_headers_are_ignored(self, agent):
        """A caller cannot launder itself into a human with headers the original trusted."""
        client = agent.client()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {agent.token}",
            HTTP_X_TANDEM_REQUEST_SOURCE="control_panel",
            HTTP_X_USER_ID="ada-admin",
        )
        response = client.post(URL, {"name": "x", "flow": {"nodes": []}}, format="json")
        assert response.status_code == 201
        assert response.json()["created_by"] == "bot-agent"
