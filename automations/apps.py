from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = "Automations"

    def ready(self) -> None:
        """Tell the authorisation policy (`governance.policy`, a lower app that never imports
        this one) where guardian keeps the grants on automations, and the audit list how to
        link an event to the run and automation it names; declare the run events the run state
        machine records (`governance.events`)."""
        from automations.audit_links import automation_pages, run_pages
        from automations.models import (
            AutomationGroupObjectPermission,
            AutomationUserObjectPermission,
        )
        from automations.runs.state import RUN_EVENT_TYPES
        from governance.audit_links import register_audit_link
        from governance.events import declare_event_types
        from governance.policy import register_automation_grant_tables

        declare_event_types(RUN_EVENT_TYPES)

        register_automation_grant_tables(
            AutomationUserObjectPermission, AutomationGroupObjectPermission
        )
        register_audit_link("runID", "run", run_pages)
        register_audit_link("automationID", "automation", automation_pages)
