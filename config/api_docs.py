"""The API docs pages, Swagger UI and ReDoc, served entirely from this site.

drf-spectacular-sidecar ships both as static files (no CDN, no fonts from elsewhere).

Swagger UI runs under the site's CSP unchanged: the stock template's inline `<style>` is a
linked stylesheet in ours, and the bootstrap script is fetched as a file (`?script`,
drf-spectacular's split view), so `script-src 'self'` holds.

ReDoc needs one exception, for its own page only: it renders with styled-components, which
inserts `<style>` elements at run time, so this view's CSP adds `style-src 'unsafe-inline'`
(styles only; scripts stay `'self'`) and lets its search index run in a `blob:` worker. Our
template loads no fonts or scripts from elsewhere and starts ReDoc from its `<redoc>` element,
without an inline script. (ReDoc's footer always asks for Redocly's logo from their CDN: the
policy refuses it, so the page makes no request elsewhere, and ReDoc hides the image.)
"""

from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

# What ReDoc's page adds to the site's policy (config/settings/base.py), and nothing else.
REDOC_CSP = {"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]}


class SwaggerDocsView(SpectacularSwaggerSplitView):
    """Swagger UI at /api/docs/."""

    template_name = "flowgate/api_docs/swagger_ui.html"


@method_decorator(csp_update(REDOC_CSP), name="get")
class RedocDocsView(SpectacularRedocView):
    """ReDoc at /api/redoc/."""

    template_name = "flowgate/api_docs/redoc.html"
