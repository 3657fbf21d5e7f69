"""JSON logs with the context of the work they describe: request id, workspace, run id, node id.

Every log record, from Flowgate's own loggers and from libraries alike, is rendered by
structlog's `ProcessorFormatter` as one JSON object per line. The context comes from
`structlog.contextvars`: the request middleware binds `request_id` (and the API's authentication
binds `workspace`), Celery's `task_prerun` binds the task and the request id its publisher sent
along in a message header, and the engine binds `run_id` / `node_id` / `workspace` around each
node execution. Contextvars follow the thread (and asyncio task), so concurrent requests or pool
processes never see each other's values.
"""

from __future__ import annotations

import logging
import re
import uuid

import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, get_contextvars

REQUEST_ID_HEADER = "X-Request-ID"
# The task message header that carries the publishing request's id to the worker.
TASK_HEADER = "flowgate_request_id"
# A caller's own request id is kept when it is short and plain (a proxy's or a client's
# correlation id); anything else is replaced, so a log line never carries attacker-chosen text.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def json_formatter() -> logging.Formatter:
    """The formatter of every handler (settings.LOGGING): one JSON object per record."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


def current_request_id() -> str | None:
    return get_contextvars().get("request_id")


class RequestContextMiddleware:
    """Give every request an id (the caller's `X-Request-ID` when plain, else a new one), bind
    it to the logging context for the request's duration and echo it in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if _SAFE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        clear_contextvars()
        bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
        finally:
            clear_contextvars()
        response[REQUEST_ID_HEADER] = request_id
        return response
