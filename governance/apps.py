from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        # Registers the OpenAPI descriptions of our authentication classes.
        # Login lockouts are audited (governance/login_lockout.py).
        from axes.signals import user_locked_out

        from governance.api import schema  # noqa: F401
        from governance.login_lockout import on_locked_out

        user_locked_out.connect(on_locked_out, dispatch_uid="governance.login_lockout")
