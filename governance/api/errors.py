"""The one exception handler behind `/api`: every error is `{"error", "code", ...}`."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response

from governance.errors import FlowgateError

logger = logging.getLogger(__name__)

_DRF_CODES: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.NotAuthenticated, "AUTHENTICATION_REQUIRED"),
    (exceptions.AuthenticationFailed, "AUTHENTICATION_REQUIRED"),
    (exceptions.PermissionDenied, "FORBIDDEN"),
    (exceptions.NotFound, "NOT_FOUND"),
    (exceptions.MethodNotAllowed, "METHOD_NOT_ALLOWED"),
    (exceptions.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (exceptions.NotAcceptable, "NOT_ACCEPTABLE"),
    (exceptions.Throttled, "RATE_LIMITED"),
    (exceptions.ParseError, "INVALID_REQUEST"),
    (exceptions.ValidationError, "INVALID_REQUEST"),
]


def _drf_body(exc: exceptions.APIException) -> dict:
    code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), "INVALID_REQUEST")
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return {"error": "Invalid request", "code": code, "fields": fields}
    if isinstance(exc, exceptions.ParseError):
        return {"error": f"Malformed request body: {exc.detail}", "code": code}
    return {"error": str(exc.detail), "code": code}


def exception_handler(exc, context):
    if isinstance(exc, FlowgateError):
        return Response(exc.body(), status=exc.status)
    if isinstance(exc, OperationalError | InterfaceError):
        # The database went away mid-request (connection cut, server restarting). The
        # transaction was rolled back with it, so nothing was written: the client may retry.
        logger.warning("database unavailable during %s: %s", context.get("request"), exc)
        return Response(
            {"error": "Database unavailable, retry later", "code": "DATABASE_UNAVAILABLE"},
            status=503,
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, RequestDataTooBig):
        return Response({"error": str(exc), "code": "PAYLOAD_TOO_LARGE"}, status=413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    return Response(_drf_body(exc), status=exc.status_code, headers=headers)


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Unknown routes under /api answer JSON, not Django's HTML page.

    Exempt from CSRF: it writes nothing, and otherwise an unsafe request to an unknown route
    would get the CSRF middleware's HTML 403 instead of this 404 (found by schemathesis).
    """
    return JsonResponse({"error": "No such API route", "code": "NOT_FOUND"}, status=404)


def server_error(request, *args, **kwargs):
    """Last resort for unhandled errors: JSON under /api, a plain page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": "Internal server error", "code": "INTERNAL_ERROR"}, status=500
        )
    from django.views.defaults import server_error as django_server_error

    return django_server_error(request)
