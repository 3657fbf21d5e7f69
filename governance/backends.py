"""Password login is for humans only: agents and services authenticate with API tokens."""

from django.contrib.auth.backends import ModelBackend


class HumanModelBackend(ModelBackend):
    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and getattr(user, "is_human", False)
