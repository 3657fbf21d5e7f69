"""`GET /metrics`: the Prometheus exposition of config/metrics.py, for a bearer token only.

The figures name workspaces and show their activity, so the endpoint is closed unless the
deployment sets `FLOWGATE_METRICS_TOKEN` (403 while unset) and the scraper sends it as
`Authorization: Bearer <token>` (401 otherwise; compared in constant time).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from config.metrics import FlowgateCollector


def _presented_token(request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@require_GET
def metrics(request):
    expected = settings.FLOWGATE_METRICS_TOKEN
    if not expected:
        return JsonResponse(
            {
                "error": "Metrics are disabled: FLOWGATE_METRICS_TOKEN is not set",
                "code": "FORBIDDEN",
            },
            status=403,
        )
    if not hmac.compare_digest(_presented_token(request).encode(), expected.encode()):
        response = JsonResponse(
            {
                "error": "A valid metrics bearer token is required",
                "code": "AUTHENTICATION_REQUIRED",
            },
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlowgateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
