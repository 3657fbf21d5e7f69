"""Run lists: one automation's newest runs, and every run of the workspace (keyset-paginated).

Thin: validate the query strictly (400 `INVALID_REQUEST` naming the parameter), call
`selectors.runs_list` (tenant and filters in the query, before the limit), render the page
with `run_json.runs_page_json`. The number of queries of a page does not depend on how many
runs it holds, and a list never writes (the original synced a blackboard per listed run).
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from automations import selectors
from automations.api import error_codes as codes
from automations.api.run_json import runs_page_json
from automations.api.run_schema import run_schema_field
from automations.ids import AUTOMATION_ID_PATTERN
from automations.models import RunStatus
from governance.api.base import WorkspaceAPIView, parse_input
from governance.api.pagination import cursor_field, keyset_page, list_json, next_cursor_field
from governance.api.schema import error_codes

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


# --- Input --------------------------------------------------------------------------------


class AutomationRunsQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT
    )
    cursor = cursor_field()


class RunListQuerySerializer(AutomationRunsQuerySerializer):
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False)
    automation_id = serializers.CharField(
        required=False,
        max_length=128,
        validators=[
            RegexValidator(
                f"^{AUTOMATION_ID_PATTERN.pattern}\\Z", message="Not a valid automation id."
            )
        ],
        help_text="Only runs of the automation with this id (also runs of a deleted one).",
    )


# --- Output (documents the JSON for the schema) --------------------------------------------


class RunListSerializer(serializers.Serializer):
    runs = run_schema_field(many=True)
    count = serializers.IntegerField(help_text="Number of runs in this response.")
    next_cursor = next_cursor_field()


class AutomationRunListSerializer(RunListSerializer):
    automationID = serializers.CharField()  # the original's key


# --- Views ---------------------------------------------------------------------------------


def _runs_page(request, queryset, query: dict) -> dict:
    """One keyset page of `queryset` as a list body under `runs`, the page rendered in one
    batch (`runs_page_json`) so its queries do not grow with its length."""
    runs, next_cursor = keyset_page(queryset, limit=query["limit"], cursor=query.get("cursor"))
    items = runs_page_json(runs, workspace=request.actor.workspace.path)
    return list_json("runs", items, next_cursor)


class AutomationRunListView(WorkspaceAPIView):
    """The runs of one automation (view permission), newest first, keyset-paginated:
    `?limit=` 1..200 (default 50), `?cursor=` the previous page's `next_cursor`.

    404 `AUTOMATION_V2_NOT_FOUND` for an automation the caller cannot see.
    """

    @extend_schema(
        parameters=[AutomationRunsQuerySerializer],
        responses=AutomationRunListSerializer,
        operation_id="automation_runs_list",
        extensions=error_codes(*codes.ACCESS),
    )
    def get(self, request, automation_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        query = parse_input(AutomationRunsQuerySerializer, request.query_params)
        page = _runs_page(request, selectors.runs_list(request.actor, automation=automation), query)
        return Response({"automationID": automation.automation_id, **page})


class RunListView(WorkspaceAPIView):
    """Every run of the caller's workspace, newest first, filtered and keyset-paginated."""

    @extend_schema(
        parameters=[RunListQuerySerializer],
        responses=RunListSerializer,
        operation_id="runs_list",
        extensions=error_codes(),
    )
    def get(self, request):
        query = parse_input(RunListQuerySerializer, request.query_params)
        queryset = selectors.runs_list(
            request.actor, status=query.get("status"), automation_id=query.get("automation_id")
        )
        return Response(_runs_page(request, queryset, query))
