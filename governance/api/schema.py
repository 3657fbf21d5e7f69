"""drf-spectacular extensions describing Flowgate's authentication in the OpenAPI schema."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "governance.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A workspace-bound API token (manage.py issue_token).",
        }


class CsrfSessionScheme(SessionScheme):
    target_class = "governance.authentication.CsrfSessionAuthentication"
