from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        """Register the `approval` gate kind with the engine's registry (the engine never
        imports this app)."""
        from approvals.services import ApprovalGateKind
        from automations.nodes.registry import register_gate_kind

        register_gate_kind("approval", ApprovalGateKind())
