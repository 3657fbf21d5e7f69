"""The three interaction endpoints: CSRF-exempt (the platforms sign instead), POST only.

Thin: each platform module verifies, parses and answers (see their docstrings).
"""

from __future__ import annotations

from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from channels.interactions import discord, slack, telegram


@csrf_exempt
@require_POST
def slack_interactions(request):
    return slack.handle(request)


@csrf_exempt
@require_POST
def discord_interactions(request):
    return discord.handle(request)


@csrf_exempt
@require_POST
def telegram_interactions(request):
    return telegram.handle(request)
