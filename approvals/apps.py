from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        """Register with the automations registries (that app never imports this one): the
        `approval` gate kind the engine opens, the reader of runs' gates for the run JSON and pages,
        and the save-time check that warns of gates no independent reviewer can decide; with
        governance's audit list, the link from an event to the gate it names. Declare the gate
        and approval-request events (`governance.events`)."""
        from approvals.audit_links import gate_pages
        from approvals.events import GATE_EVENT_TYPES
        from approvals.request_events import REQUEST_EVENT_TYPES, gate_events_of_requests
        from approvals.reviewers import gate_warnings
        from approvals.selectors import ApprovalGateReader
        from approvals.services import ApprovalGateKind
        from automations import warnings
        from automations.nodes.registry import register_gate_kind
        from automations.run_gates import register_gate_reader
        from governance.audit_links import register_audit_link
        from governance.events import declare_event_types, register_event_subscriber

        declare_event_types(GATE_EVENT_TYPES)
        declare_event_types(REQUEST_EVENT_TYPES)
        register_event_subscriber(gate_events_of_requests)  # (importing it connects on_gate_closed)
        register_gate_kind("approval", ApprovalGateKind())
        register_gate_reader(ApprovalGateReader())
        warnings.register(gate_warnings)
        register_audit_link("gateID", "gate", gate_pages)
