from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        # Registers the OpenAPI descriptions of our authentication classes.
        from governance.api import schema  # noqa: F401
