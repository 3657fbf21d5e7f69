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


# --- Error codes per operation ---------------------------------------------------------------

# Codes any /api operation may answer, whatever it does: request shape, workspace selection,
# credentials, the generic refusals of the exception handler, size and media type.
COMMON_ERROR_CODES = (
    "INVALID_REQUEST",
    "WORKSPACE_REQUIRED",
    "INVALID_WORKSPACE",
    "WORKSPACE_NOT_FOUND",
    "AUTHENTICATION_REQUIRED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "METHOD_NOT_ALLOWED",
    "NOT_ACCEPTABLE",
    "UNSUPPORTED_MEDIA_TYPE",
    "RATE_LIMITED",
    "PAYLOAD_TOO_LARGE",
    "DATABASE_UNAVAILABLE",
)
ERROR_CODES_EXTENSION = "x-error-codes"
# An operation whose callers are rate-limited (`extensions={RATE_LIMITED_EXTENSION: True}`)
# also documents 429 `RATE_LIMITED`.
RATE_LIMITED_EXTENSION = "x-rate-limited"
RATE_LIMITED_ERROR = {"429": "Too many requests (`RATE_LIMITED`); retry after `Retry-After` s"}
# A read answering more than READ_ERRORS lists the extra statuses (`extra_errors`).
EXTRA_ERRORS_EXTENSION = "x-extra-errors"
IDEMPOTENCY_ERROR_CODES = ("IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_REQUEST_IN_PROGRESS")


def error_codes(*codes: str) -> dict[str, list[str]]:
    """`extend_schema(extensions=error_codes(...))`: the codes this operation answers besides
    `COMMON_ERROR_CODES`. They become an enum on the operation's error `code`; an enum too wide
    is harmless to a generated client, one too narrow breaks it, so list generously."""
    return {ERROR_CODES_EXTENSION: sorted(set(codes))}


def extra_errors(statuses: dict[str, str]) -> dict[str, dict[str, str]]:
    """`extend_schema(extensions=extra_errors({"410": "why"}))`: error statuses this operation
    answers besides those of its method (READ_ERRORS, WRITE_ERRORS), with the JSON error shape."""
    return {EXTRA_ERRORS_EXTENSION: statuses}


def _error_component(result, operation) -> dict[str, str]:
    """The `$ref` of the operation's error shape: its own component with a `code` enum when it
    declares its codes (`error_codes`), else the generic `Error`."""
    codes = operation.get(ERROR_CODES_EXTENSION)
    if codes is None:
        return {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    name = "".join(part.capitalize() for part in operation["operationId"].split("_")) + "Error"
    schema = {
        **ERROR_SCHEMA,
        "properties": {
            **ERROR_SCHEMA["properties"],
            "code": {"type": "string", "enum": sorted({*COMMON_ERROR_CODES, *codes})},
        },
    }
    result["components"]["schemas"][name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: document the JSON error shape on every /api operation.

    The exception handler (governance/api/errors.py) answers every failure with the same body,
    so it is declared once here instead of on each view. An operation that documents its own
    error responses (audit, handoffs) keeps exactly those; one that lists its codes
    (`error_codes`) gets them as an enum.
    """
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            ref = _error_component(result, operation)
            errors = READ_ERRORS if method in ("get", "head") else WRITE_ERRORS
            if operation.get(RATE_LIMITED_EXTENSION):
                errors = {**errors, **RATE_LIMITED_ERROR}
            errors = {**errors, **operation.get(EXTRA_ERRORS_EXTENSION, {})}
            responses = operation.setdefault("responses", {})
            if any(status.startswith("4") for status in responses):
                continue
            for status, description in errors.items():
                responses.setdefault(
                    status,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
    return result
