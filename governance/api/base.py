"""Base API view: authenticates, then resolves the actor (workspace, role, kind) once."""

from __future__ import annotations

from django.http import QueryDict
from rest_framework.views import APIView

from governance.tenancy import resolve_actor


class WorkspaceAPIView(APIView):
    """Every workspace-scoped endpoint derives from this; `request.actor` is set in `initial`."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        request.actor = resolve_actor(request)


def parse_input(serializer_class, data, **kwargs) -> dict:
    """Validate `data` with a small input serializer; errors become 400 INVALID_REQUEST."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def parse_optional_body(serializer_class, request) -> dict:
    """The validated body of an endpoint whose fields are all optional: an absent body is `{}`,
    while a JSON body that is not an object (`[]`, `0`, `null`) is still a 400."""
    data = {} if isinstance(request.data, QueryDict) and not request.data else request.data
    return parse_input(serializer_class, data)
