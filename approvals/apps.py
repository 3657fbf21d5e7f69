from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        """Register with the automations registries (that app never imports this one): the
        `approval` gate kind the engine opens, the reader of runs' gates for the run JSON and pages,
        and the save-time check that warns of gates no
        independent reviewer can decide."""
        from approvals import request_events  # noqa: F401 (connects its gate_closed receiver)
        from approvals.reviewers import gate_warnings
        from approvals.selectors import ApprovalGateReader
        from approvals.services import ApprovalGateKind
        from automations import warnings
        from automations.nodes.registry import register_gate_kind
        from automations.run_gates import register_gate_reader

        register_gate_kind("approval", ApprovalGateKind())
        register_gate_reader(ApprovalGateReader())
        warnings.register(gate_warnings)
