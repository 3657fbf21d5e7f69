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


# --- Error responses -------------------------------------------------------------------------

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error under /api: a message, a stable code, and per-code extra keys "
    "(`fields`, `automationID`, `currentStatus`, `winningDecision`, …).",
    "properties": {
        "error": {"type": "string"},
        "code": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {}},
    },
    "required": ["error", "code"],
    "additionalProperties": True,
}
# What any operation may answer besides its success (docs/api.md "Errors"): bad input or a bad
# X-Workspace header (400), no credentials (401), a refused action (403), an object that is
# missing or in another workspace (404, also X-Workspace naming a workspace you are not in);
# and for writes a conflicting state (409), a body too large (413) or not JSON (415).
READ_ERRORS = {
    "400": "Invalid request (`INVALID_REQUEST`, `WORKSPACE_REQUIRED`, …)",
    "401": "No, unknown or revoked credentials (`AUTHENTICATION_REQUIRED`)",
    "403": "Refused by the authorisation policy",
    "404": "Not found, or in another workspace (indistinguishable)",
}
WRITE_ERRORS = {
    **READ_ERRORS,
    "409": "Conflicts with the object's current state",
    "413": "Body above FLOWGATE_MAX_BODY_BYTES (`PAYLOAD_TOO_LARGE`)",
    "415": "Body is not application/json (`UNSUPPORTED_MEDIA_TYPE`)",
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: document the JSON error shape on every /api operation.

    The exception handler (governance/api/errors.py) answers every failure with the same body,
    so it is declared once here instead of on each view. An operation that documents its own
    error responses (audit, handoffs) keeps exactly those.
    """
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    ref = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            errors = READ_ERRORS if method in ("get", "head") else WRITE_ERRORS
            responses = operation.setdefault("responses", {})
            if any(status.startswith("4") for status in responses):
                continue
            for status, description in errors.items():
                responses.setdefault(
                    status,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
    return result
