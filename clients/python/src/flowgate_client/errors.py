"""What the client raises: Flowgate's JSON errors, and a wait that ran out of time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowgate_client.models import ApprovalRequest


class FlowgateError(Exception):
    """An error answer of the API: its HTTP status, its `code` and the whole JSON body.

    Every error Flowgate answers under `/api` is `{"error": message, "code": CODE, ...extra}`
    (docs/api.md, "Errors"); `extra` keeps the rest (`fields` of a 400, `currentStatus` of a 409).
    """

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any]):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body

    @property
    def extra(self) -> dict[str, Any]:
        return {k: v for k, v in self.body.items() if k not in ("error", "code")}


class ApprovalTimeout(TimeoutError):
    """`wait()` ended with the request still pending; `request` is its last known state.

    Nothing is lost: the request stays open on the server and can be waited for again, also
    from another process, by its id (`client.approval(request_id).wait()`).
    """

    def __init__(self, request: ApprovalRequest):
        super().__init__(f"approval request {request.request_id} is still {request.status}")
        self.request = request
