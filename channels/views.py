"""The self-service link page: `/channels/link/<token>/` (see `channels.linking`).

GET shows which chat account will be linked to which Flowgate user (the signed-in one), and
warns that a link someone else sent must not be confirmed: whoever pressed the button as that
chat account will decide as this user. The confirming POST (CSRF protected) needs the user's
password again (a recent authentication, counted by the login lockout like any sign-in), then
links it, proven through the token's connection, via `channels.services.identity_confirm`,
which uses the token up. A token that is forged, expired or used, names a connection that is
gone or inactive, or a workspace the user is not a member of, links nothing.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from channels.linking import LinkExpired, read_link_token
from channels.models import ChannelConnection, ChatIdentity
from channels.services import identity_confirm
from governance.actors import Actor
from governance.errors import FlowgateError
from governance.models import Membership

TEMPLATE = "channels/link.html"


@login_required
@require_http_methods(["GET", "POST"])
def link_account(request, token: str):
    try:
        link = read_link_token(token)
    except LinkExpired:
        return render(request, TEMPLATE, {"error": "expired"}, status=400)
    connection = ChannelConnection.objects.filter(pk=link.connection_id, is_active=True).first()
    if connection is None:
        return render(request, TEMPLATE, {"error": "expired"}, status=400)
    membership = (
        Membership.objects.select_related("user", "workspace__organization")
        .filter(user=request.user, workspace_id=connection.workspace_id)
        .first()
    )
    if membership is None:
        return render(request, TEMPLATE, {"error": "not_member"}, status=403)
    account = link.account
    linked = (
        ChatIdentity.objects.select_related("user")
        .filter(
            connection=connection,
            kind=account.kind,
            external_team_id=account.team_id,
            external_user_id=account.user_id,
        )
        .first()
    )
    context = {"account": account, "workspace": membership.workspace, "linked": linked}
    if request.method == "GET":
        return render(request, TEMPLATE, context)
    if not _password_confirmed(request):
        refused = "Wrong password: enter the password you sign in to Flowgate with."
        return render(request, TEMPLATE, {**context, "refused": refused}, status=400)
    try:
        identity = identity_confirm(
            actor=Actor.for_member(membership, source="page"),
            account=account,
            connection=connection,
            token=token,
        )
    except FlowgateError as exc:
        return render(request, TEMPLATE, {**context, "refused": exc.message}, status=exc.status)
    return render(request, TEMPLATE, {**context, "linked": identity, "done": True})


def _password_confirmed(request) -> bool:
    """The signed-in user typed their own password (through `authenticate`, so failures count
    towards the login lockout and a locked-out account is refused here too)."""
    user = authenticate(
        request,
        username=request.user.get_username(),
        password=request.POST.get("password", ""),
    )
    return user is not None and user.pk == request.user.pk
