"""`manage.py issue_token <username> --workspace <org>/<ws>` — prints only the new token."""

from django.core.management.base import BaseCommand, CommandError

from governance.errors import FlowgateError
from governance.models import User
from governance.services import token_issue, workspace_get


class Command(BaseCommand):
    help = "Issue an API token bound to one workspace; the token is printed once, alone."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--workspace", required=True, help="<org-slug>/<workspace-slug>")
        parser.add_argument("--name", default="", help="A label for the token")

    def handle(self, *args, username, workspace, name, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username}")
        try:
            _, raw = token_issue(user=user, workspace=workspace_get(workspace), name=name)
        except FlowgateError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(raw)
