from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    """Chat channels. The explicit label keeps it apart from the unrelated `channels` package."""

    name = "channels"
    label = "flowgate_channels"
    verbose_name = "Chat channels"

    def ready(self) -> None:
        """Connect the receivers of the approval gates' signals (`channels.receivers`)."""
        from channels import receivers  # noqa: F401
