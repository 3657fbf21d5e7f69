"""Shared fixtures: workspaces with members of every role, API clients authenticated by token."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from governance.models import PrincipalKind, Role, User, Workspace
from governance.services import member_add, token_issue, workspace_create


@dataclass
class Member:
    user: User
    workspace: Workspace
    token: str

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")
        return client


@pytest.fixture
def make_member(db):
    """`make_member("acme/ops", "alice", role="operator", kind="human", clearances=[...])`."""

    def make(
        path: str,
        username: str,
        *,
        role: str = Role.VIEWER,
        kind: str = PrincipalKind.HUMAN,
        clearances=(),
    ) -> Member:
        workspace, _ = workspace_create(path=path)
        result = member_add(
            workspace=workspace,
            username=username,
            role=role,
            kind=kind,
            password="pw-for-tests" if kind == PrincipalKind.HUMAN else None,
            clearances=list(clearances),
        )
        _, raw = token_issue(user=result.user, workspace=workspace)
        return Member(user=result.user, workspace=workspace, token=raw)

    return make


@pytest.fixture
def workspace(db) -> Workspace:
    return workspace_create(path="acme/ops")[0]


@pytest.fixture
def other_workspace(db) -> Workspace:
    return workspace_create(path="globex/ops")[0]


@pytest.fixture
def admin(make_member) -> Member:
    return make_member("acme/ops", "ada-admin", role=Role.ADMIN)


@pytest.fixture
def operator(make_member) -> Member:
    return make_member("acme/ops", "otto-operator", role=Role.OPERATOR)


@pytest.fixture
def viewer(make_member) -> Member:
    return make_member("acme/ops", "vera-viewer", role=Role.VIEWER)


@pytest.fixture
def reviewer(make_member) -> Member:
    return make_member("acme/ops", "rita-reviewer", role=Role.REVIEWER)


@pytest.fixture
def outsider(make_member) -> Member:
    """An admin of another organisation's workspace: must never see acme's data."""
    return make_member("globex/ops", "oscar-outsider", role=Role.ADMIN)


@pytest.fixture
def agent(make_member) -> Member:
    return make_member("acme/ops", "bot-agent", role=Role.OPERATOR, kind=PrincipalKind.AGENT)
