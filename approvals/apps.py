from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals.reviewers import gate_warnings
        from automations import warnings

        warnings.register(gate_warnings)
