"""Routes under `/channels/`: the platforms' interaction endpoints and the account link page."""

from django.urls import path

from channels import views
from channels.interactions import views as interactions

urlpatterns = [
    path("slack/interactions", interactions.slack_interactions, name="channels-slack"),
    path("discord/interactions", interactions.discord_interactions, name="channels-discord"),
    path("telegram/interactions", interactions.telegram_interactions, name="channels-telegram"),
    path("link/<str:token>/", views.link_account, name="channels-link"),
]
