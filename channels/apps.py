from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    """Chat channels. The explicit label keeps it apart from the unrelated `channels` package."""

    name = "channels"
    label = "flowgate_channels"
    verbose_name = "Chat channels"

    def ready(self) -> None:
        """Connect the receivers of the approval gates' signals (`channels.receivers`), turn
        every recorded domain event into its webhook deliveries, and keep the events that
        deliveries still refer to from the event retention (`governance.events`)."""
        from channels import receivers  # noqa: F401
        from channels.webhooks.retention import event_hold
        from channels.webhooks.sending import deliveries_for_events
        from governance.events import register_event_hold, register_event_subscriber

        register_event_subscriber(deliveries_for_events)
        register_event_hold(event_hold)
