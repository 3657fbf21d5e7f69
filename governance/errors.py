"""Typed errors raised by services and mapped to the JSON error shape in one place.

Every error carries an HTTP status, a stable `code` and optional extra keys that are merged into
the body: `{"error": message, "code": code, **extra}`.
"""

from __future__ import annotations

from typing import Any


class FlowgateError(Exception):
    status = 400
    code = "INVALID_REQUEST"
    message = "Invalid request"

    def __init__(self, message: str | None = None, *, code: str | None = None, **extra: Any):
        self.message = message or self.message
        self.code = code or self.code
        self.extra = extra
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, **self.extra}


class InvalidRequest(FlowgateError):
    status = 400


class AuthenticationRequired(FlowgateError):
    status = 401
    code = "AUTHENTICATION_REQUIRED"
    message = "Authentication credentials were not provided or are invalid"


class Forbidden(FlowgateError):
    status = 403
    code = "FORBIDDEN"
    message = "Forbidden"


class NotFound(FlowgateError):
    status = 404
    code = "NOT_FOUND"
    message = "Not found"


class Conflict(FlowgateError):
    status = 409
    code = "CONFLICT"
    message = "Conflict"


class Gone(FlowgateError):
    status = 410
    code = "GONE"
    message = "No longer available"


class PayloadTooLarge(FlowgateError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    message = "Request body too large"


class AutomationNotFound(NotFound):
    code = "AUTOMATION_V2_NOT_FOUND"
    message = "Automation not found"

    def __init__(self, automation_id: str):
        super().__init__(automationID=automation_id)


class InvalidFlow(InvalidRequest):
    code = "AUTOMATION_V2_INVALID_FLOW"
    message = "Invalid automation flow"
