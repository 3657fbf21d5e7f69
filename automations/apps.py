from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = "Automations"

    def ready(self) -> None:
        """Tell the authorisation policy (`governance.policy`, a lower app that never imports
        this one) where guardian keeps the grants on automations."""
        from automations.models import (
            AutomationGroupObjectPermission,
            AutomationUserObjectPermission,
        )
        from governance.policy import register_automation_grant_tables

        register_automation_grant_tables(
            AutomationUserObjectPermission, AutomationGroupObjectPermission
        )
