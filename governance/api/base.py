"""Base API view: authenticates, then resolves the actor (workspace, role, kind) once."""

from __future__ import annotations

from rest_framework.views import APIView

from governance.tenancy import resolve_actor


class WorkspaceAPIView(APIView):
    """Every workspace-scoped endpoint derives from this; `request.actor` is set in `initial`."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        request.actor = resolve_actor(request)
