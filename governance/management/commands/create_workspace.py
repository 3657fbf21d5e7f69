"""`manage.py create_workspace <org>/<ws>` — create an organisation's workspace (idempotent)."""

from django.core.management.base import BaseCommand, CommandError

from governance.errors import FlowgateError
from governance.services import workspace_create


class Command(BaseCommand):
    help = "Create the workspace <org>/<ws> (and its organisation) if it does not exist."

    def add_arguments(self, parser):
        parser.add_argument("path", help="<org-slug>/<workspace-slug>")
        parser.add_argument("--name", help="Display name of the workspace")

    def handle(self, *args, path, name=None, **options):
        try:
            workspace, created = workspace_create(path=path, name=name)
        except FlowgateError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{'created' if created else 'exists'} {workspace.path}")
