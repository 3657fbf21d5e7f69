"""DRF authentication: `Authorization: Bearer <token>` or a session (with CSRF).

Only credentials identify a caller; no header a caller can set names a user, a kind or a tenant.
"""

from __future__ import annotations

from rest_framework import authentication, exceptions
from structlog.contextvars import bind_contextvars

from governance.models import ApiToken
from governance.tokens import token_digest


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Resolves a workspace-bound API token; revoked tokens and inactive users get 401."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        raw = raw.strip()
        if not raw:
            raise exceptions.AuthenticationFailed("Empty bearer token")
        # A slice, not `.first()`: the digest is unique, and ordering the wide joined row by
        # its key costs more to compile than the query takes to run.
        found = ApiToken.objects.select_related("user", "workspace__organization").filter(
            digest=token_digest(raw), revoked_at__isnull=True
        )[:1]
        token = found[0] if found else None
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token")
        # The rest of this request's log lines name the token's workspace (config/log_context.py).
        bind_contextvars(workspace=token.workspace.path)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


class CsrfSessionAuthentication(authentication.SessionAuthentication):
    """Session login (CSRF-checked by DRF) for human users only."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None or not getattr(result[0], "is_human", False):
            return None
        return result
