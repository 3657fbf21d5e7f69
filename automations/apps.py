from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = "Automations"

    def ready(self) -> None:
        """Tell the authorisation policy (`governance.policy`, a lower app that never imports
        this one) where guardian keeps the grants on automations; declare the run events the
        run state machine records (`governance.events`)."""
        from automations.models import (
            AutomationGroupObjectPermission,
            AutomationUserObjectPermission,
        )
        from automations.runs.state import RUN_EVENT_TYPES
        from governance.events import declare_event_types
        from governance.policy import register_automation_grant_tables

        declare_event_types(RUN_EVENT_TYPES)

        register_automation_grant_tables(
            AutomationUserObjectPermission, AutomationGroupObjectPermission
        )
