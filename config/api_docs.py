"""The API docs page, Swagger UI, served entirely from this site under its CSP.

drf-spectacular-sidecar ships Swagger UI as static files (no CDN). The stock template adds an
inline `<style>`; ours links a stylesheet instead. The bootstrap script is fetched as a file
(`?script`, drf-spectacular's split view), so no inline script is needed and the site's
`script-src 'self'` holds.
"""

from drf_spectacular.views import SpectacularSwaggerSplitView


class SwaggerDocsView(SpectacularSwaggerSplitView):
    """Swagger UI at /api/docs/."""

    template_name = "flowgate/api_docs/swagger_ui.html"
