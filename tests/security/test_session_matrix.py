"""The authorisation matrix of the approval pages and the admin console
(tests/security/session_table.py) against the real views, signed in as each caller: every cell
answers exactly its status and outcome; another workspace's objects answer exactly like missing
ones; every page URL, custom admin view and admin action has a row."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib import admin, messages
from django.test import Client
from django.urls import URLPattern, get_resolver

from approvals.pages import urls as approval_page_urls
from channels import urls as channel_urls
from channels.models import ChatIdentity
from governance.models import AuditEvent
from tests.security.authz_table import AGENTS, CODES, ROLES
from tests.security.session_table import SESSION_ROUTES, SessionRoute
from tests.security.world import LINKED_SLACK, World, build_world

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"  # tests/conftest.py make_member's password for humans
DENIALS = ("automation.governance.denied", "automation.governance.gate_decision_denied")
MISSING = {  # any other placeholder is a database key
    "gate_id": "zz-no-such-gate",
    **{f"{state}_run_id": "run-no-such-run" for state in ("queued", "paused", "gate")},
}
MISSING_KEY = "999999999"
REFUSALS = set(CODES) - {"MISSING", "AUTH"}  # the services' refusal codes


def sign_in(world: World, role: str, *, staff: bool = True) -> Client:
    """A browser session of `role`, made the way the product allows (see session_table)."""
    client = Client()
    member = world.members.get(role)
    if member is None:
        return client
    user = member.user
    user.is_staff = staff
    if role in AGENTS:
        user.set_password(PASSWORD)
    user.save()
    if role in AGENTS:
        # Even with the right password an agent cannot sign in; a session forged for one
        # anyway is read as no one (the backend will not load an agent from a session).
        assert not client.login(username=user.username, password=PASSWORD)
        client.force_login(user, backend="governance.backends.HumanModelBackend")
    else:
        assert client.login(username=user.username, password=PASSWORD)
    return client


def world_for(make_member, route: SessionRoute) -> World:
    return build_world(make_member, runs=(route.run,) if route.run else ())


def call(client: Client, route: SessionRoute, ids: dict[str, str]):
    path = route.path.format(**ids)
    if route.method == "GET":
        return client.get(path)
    return client.post(path, {k: v.format(**ids) for k, v in (route.body or {}).items()})


def shown_messages(client: Client, response) -> list[tuple[int, str]]:
    """The messages the page a redirect leads to shows."""
    page = client.get(response["Location"])
    return [(m.level, str(m)) for m in page.context["messages"]]


def denial_codes(world: World) -> list[str]:
    events = AuditEvent.objects.filter(
        workspace=world.automation.workspace_id, event_type__in=DENIALS
    ).order_by("id")
    return [event.payload.get("code") for event in events]


def audit_count() -> int:
    return AuditEvent.objects.count()


@pytest.mark.parametrize(
    ("route", "role"),
    [
        pytest.param(route, role, id=f"{route.name}-{role}")
        for route in SESSION_ROUTES
        for role in ROLES
    ],
)
def test_cell(make_member, route, role):
    world = world_for(make_member, route)
    client = sign_in(world, role)
    ids = world.session_ids()
    denied_before, events_before = denial_codes(world), audit_count()
    response = call(client, route, ids)
    status, outcome = route.expect[role]
    assert response.status_code == status, response.content[:2000]
    if outcome in ("LOGIN", "SIGNIN"):
        location = urlsplit(response["Location"])
        assert location.path == route.login_url
        assert parse_qs(location.query)["next"] == [route.path.format(**ids)]
        assert audit_count() == events_before
    elif outcome in REFUSALS:  # a refusal by the service: the error, and its audited denial
        if route.is_admin:
            levels = [level for level, _ in shown_messages(client, response)]
            assert messages.ERROR in levels and messages.SUCCESS not in levels
        else:
            assert response.context["error"].code == CODES[outcome]
        assert denial_codes(world) == [*denied_before, CODES[outcome]]
    elif outcome == "DONE":
        if not route.is_admin:
            assert response["Location"] == route.path.format(**ids)
        levels = [level for level, _ in shown_messages(client, response)]
        assert messages.SUCCESS in levels and messages.ERROR not in levels
        assert denial_codes(world) == denied_before
    elif outcome in ("LINKED", "NOT_MEMBER"):
        links = ChatIdentity.objects.filter(
            connection=world.connection, external_user_id=LINKED_SLACK.user_id
        )
        if outcome == "LINKED":
            assert [link.user_id for link in links] == [world.members[role].user.pk]
        else:
            assert not links.exists() and audit_count() == events_before
    elif outcome == "NOTHING":
        levels = [level for level, _ in shown_messages(client, response)]
        assert messages.SUCCESS not in levels and messages.ERROR not in levels
        assert audit_count() == events_before


@pytest.mark.parametrize(
    "route", [pytest.param(r, id=r.name) for r in SESSION_ROUTES if r.scoped is not None]
)
def test_other_workspace_answers_exactly_like_a_missing_object(make_member, route):
    """Same status, same redirect, same messages and same page (the id itself aside) for an
    object of another workspace as for an id that exists nowhere."""
    world = world_for(make_member, route)
    client = sign_in(world, "other_workspace")
    ids = world.session_ids()
    absent = MISSING.get(route.scoped, MISSING_KEY)
    real = call(client, route, ids)
    real_shown = shown_messages(client, real) if real.status_code == 302 else None
    missing = call(client, route, {**ids, route.scoped: absent})
    missing_shown = shown_messages(client, missing) if missing.status_code == 302 else None
    assert real.status_code == missing.status_code
    assert real_shown == missing_shown
    assert real.get("Location") == missing.get("Location")
    normalise = {ids[route.scoped]: "<id>", absent: "<id>"}
    assert _replace(real.content.decode(), normalise) == _replace(
        missing.content.decode(), normalise
    )


def _replace(text: str, mapping: dict[str, str]) -> str:
    for old, new in mapping.items():
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize(
    "route", [pytest.param(r, id=r.name) for r in SESSION_ROUTES if r.is_admin]
)
def test_a_member_who_is_not_staff_is_sent_to_the_admin_login(make_member, route):
    world = world_for(make_member, route)
    client = sign_in(world, "admin", staff=False)
    ids = world.session_ids()
    response = call(client, route, ids)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/admin/login/"
    assert parse_qs(location.query)["next"] == [route.path.format(**ids)]


# -- coverage: a new page, custom admin view or admin action without a row fails here --

# Admin actions deliberately outside this matrix, with where they are tested instead.
ACTIONS_ELSEWHERE = {
    ("governance", "apitoken", "revoke"): "workspace admins only; tests/governance/test_admin.py",
    ("flowgate_channels", "channelconnection", "deactivate"): (
        "workspace admins only; tests/channels/test_channels_admin.py"
    ),
    ("axes", "accessattempt", "unlock"): "superusers only; tests/governance/test_login_lockout.py",
    ("approvals", "delegation", "revoke"): (
        "the delegator, the delegate or a workspace admin; tests/approvals/test_delegation.py"
    ),
    ("flowgate_channels", "webhookdelivery", "redeliver"): (
        "workspace admins only; tests/channels/test_webhooks_admin.py"
    ),
    ("approvals", "standingapproval", "revoke"): (
        "its grantor or a workspace admin; tests/approvals/test_standing_approvals.py"
    ),
}


def _shape(path: str) -> str:
    """A path with every placeholder or converter written `{}`."""
    return re.sub(r"\{\w+\}|<(\w+:)?\w+>", "{}", path)


def _rows() -> set[tuple[str, str]]:
    return {(route.method, _shape(route.path)) for route in SESSION_ROUTES}


def test_every_page_url_has_rows():
    """Every approval page URL and the chat link page (the other `/channels/` URLs are the
    platforms' signed webhooks, not pages: tests/channels/test_interactions_*.py)."""
    pages = [("/approvals/", p) for p in approval_page_urls.urlpatterns] + [
        ("/channels/", p) for p in channel_urls.urlpatterns if p.name == "channels-link"
    ]
    assert len(pages) == len(approval_page_urls.urlpatterns) + 1
    for prefix, pattern in pages:
        shape = _shape(prefix + str(pattern.pattern))
        assert ("GET", shape) in _rows(), shape


def test_every_custom_admin_view_has_a_row():
    """The views a model admin adds to Django's own (its `get_urls` beyond the defaults)."""
    defaults = {"changelist", "add", "history", "delete", "change"}
    custom = set()
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        prefix = f"/admin/{meta.app_label}/{meta.model_name}/"
        for pattern in model_admin.get_urls():
            if not isinstance(pattern, URLPattern) or pattern.name is None:
                continue
            suffix = pattern.name.removeprefix(f"{meta.app_label}_{meta.model_name}_")
            if suffix in defaults:
                continue
            custom.add(_shape(prefix + str(pattern.pattern)))
    assert custom, "no custom admin view found: the test no longer looks in the right place"
    assert custom - {shape for _, shape in _rows()} == set()


def test_every_admin_action_has_a_row():
    """Every changelist action a model admin declares (Django's site-wide delete aside)."""
    declared = set()
    for model, model_admin in admin.site._registry.items():
        for action in model_admin.actions or ():
            name = action if isinstance(action, str) else action.__name__
            declared.add((model._meta.app_label, model._meta.model_name, name))
    rows = {
        (*route.path.strip("/").split("/")[1:3], route.body["action"])
        for route in SESSION_ROUTES
        if route.is_admin and route.method == "POST" and "_selected_action" in (route.body or {})
    }
    assert declared - rows - set(ACTIONS_ELSEWHERE) == set()
    assert set(ACTIONS_ELSEWHERE) <= declared


def test_the_session_urls_are_the_ones_mounted():
    """Every row's path resolves to a view (a renamed URL fails here, not silently 404)."""
    resolver = get_resolver()
    for route in SESSION_ROUTES:
        path = re.sub(r"\{\w+\}", "1", route.path)
        assert resolver.resolve(path), route.path
