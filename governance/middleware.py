"""Request-level guards that must act before Django or DRF read the body."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse


class BodySizeLimitMiddleware:
    """Refuse bodies above `FLOWGATE_MAX_BODY_BYTES` with 413 before anything reads them.

    DRF's parsers read the WSGI stream directly and so bypass Django's own
    `DATA_UPLOAD_MAX_MEMORY_SIZE` check; the declared Content-Length is checked here instead.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse(
                {"error": "Invalid Content-Length header", "code": "INVALID_REQUEST"}, status=400
            )
        limit = settings.FLOWGATE_MAX_BODY_BYTES
        if length > limit:
            return JsonResponse(
                {
                    "error": f"Request body of {length} bytes exceeds the limit of {limit} bytes",
                    "code": "PAYLOAD_TOO_LARGE",
                    "limit": limit,
                },
                status=413,
            )
        return self.get_response(request)
