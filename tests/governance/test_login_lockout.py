"""Login lockout (issue 14, django-axes): as first found on `main`, 20 wrong passwords and then
the right one signed in. Now, after FLOWGATE_LOGIN_FAILURE_LIMIT (5) failures of one account
from one address, that account is refused from that address on every sign-in form for the
cool-off, the lockout is audited once, a superuser can unlock it (audited), and API tokens go on
working."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client

from governance.models import AuditEvent, User

pytestmark = pytest.mark.django_db

FORMS = ["/accounts/login/", "/admin/login/"]


def sign_in(path: str, username: str, password: str, *, address: str = "203.0.113.7"):
    client = Client(REMOTE_ADDR=address)
    response = client.post(path, {"username": username, "password": password})
    return client, response


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("form", FORMS)
def test_twenty_wrong_passwords_then_the_right_one_is_refused(form, operator, make_member):
    if form == "/admin/login/":
        User.objects.filter(pk=operator.user.pk).update(is_staff=True)
    for _ in range(20):
        sign_in(form, operator.user.username, "wrong")

    client, response = sign_in(form, operator.user.username, "pw-for-tests")

    assert response.status_code == 429
    assert not signed_in(client)
    events = AuditEvent.objects.filter(event_type="governance.login.locked_out")
    assert events.count() == 1  # when it started, not for every refused attempt
    assert events.get().payload["username"] == operator.user.username
    assert events.get().payload["failureLimit"] == settings.AXES_FAILURE_LIMIT


def test_the_limit_and_the_source(operator):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in("/accounts/login/", operator.user.username, "wrong")
    client, _ = sign_in("/accounts/login/", operator.user.username, "pw-for-tests")
    assert signed_in(client)  # under the limit; the success resets the count
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("/accounts/login/", operator.user.username, "wrong")
    client, _ = sign_in("/accounts/login/", operator.user.username, "pw-for-tests")
    assert not signed_in(client)
    # The lock is of this account from this address: the owner elsewhere still signs in.
    client, _ = sign_in(
        "/accounts/login/", operator.user.username, "pw-for-tests", address="198.51.100.9"
    )
    assert signed_in(client)


def test_api_tokens_are_unaffected(operator):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("/accounts/login/", operator.user.username, "wrong")
    assert operator.client().get("/api/automations/v2").status_code == 200


def test_a_superuser_unlocks_and_the_unlock_is_audited(operator):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("/accounts/login/", operator.user.username, "wrong")
    attempt = AccessAttempt.objects.get(username=operator.user.username)
    User.objects.create_superuser("root", "root@example.com", "pw-for-tests")
    admin = Client()
    admin.force_login(User.objects.get(username="root"))

    response = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "unlock", "_selected_action": [attempt.pk]},
    )

    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    event = AuditEvent.objects.get(event_type="governance.login.unlocked")
    assert (event.payload["username"], event.actor_id) == (operator.user.username, "root")
    client, _ = sign_in("/accounts/login/", operator.user.username, "pw-for-tests")
    assert signed_in(client)


def test_staff_who_are_not_superusers_cannot_see_lockouts(operator):
    User.objects.filter(pk=operator.user.pk).update(is_staff=True)
    client = Client()
    client.force_login(operator.user)
    assert client.get("/admin/axes/accessattempt/").status_code == 403
