"""The front door, `/`: what a signed-in person should look at next, a sign-in link otherwise.

It reads gates (approvals) and runs (automations), so it lives in config, above every app. It
reads through their selectors and writes nothing.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from approvals.pages.pending import pending_for_user
from automations.selectors import runs_needing_attention
from governance.models import Membership

# Rows per list: the landing page points at the full lists, it does not replace them.
LIMIT = 10


@require_http_methods(["GET", "HEAD"])
def home(request: HttpRequest) -> HttpResponse:
    """Pending approvals and runs needing attention in the reader's workspaces, and where to go
    from here (approval pages, admin console, API docs)."""
    if not request.user.is_authenticated:
        return render(request, "flowgate/home.html", {"signed_in": False})
    workspace_ids = list(
        Membership.objects.filter(user=request.user).values_list("workspace_id", flat=True)
    )
    gates = list(pending_for_user(request.user)[: LIMIT + 1])
    runs = list(runs_needing_attention(workspace_ids)[: LIMIT + 1])
    return render(
        request,
        "flowgate/home.html",
        {
            "signed_in": True,
            "gates": gates[:LIMIT],
            "more_gates": len(gates) > LIMIT,
            "runs": runs[:LIMIT],
            "more_runs": len(runs) > LIMIT,
        },
    )
