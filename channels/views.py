"""The self-service link page: `/channels/link/<token>/` (see `channels.linking`).

GET shows which chat account will be linked to the signed-in user; the confirming POST (CSRF
protected) links it, proven through the token's connection, via
`channels.services.identity_confirm`. A token that is forged or expired, names a connection
that is gone or inactive, or a workspace the user is not a member of, links nothing.
"""

from __future__ import annotations

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
    try:
        identity = identity_confirm(
            actor=Actor.for_member(membership, source="page"),
            account=account,
            connection=connection,
        )
    except FlowgateError as exc:
        return render(request, TEMPLATE, {**context, "refused": exc.message}, status=exc.status)
    return render(request, TEMPLATE, {**context, "linked": identity, "done": True})
