"""`manage.py add_member <org>/<ws> <user> --role R --kind K [--password P] [--clearance C …]`."""

from django.core.management.base import BaseCommand, CommandError

from governance.errors import FlowgateError
from governance.models import DATA_CLASSES, PrincipalKind, Role
from governance.services import member_add, workspace_get


class Command(BaseCommand):
    help = "Add a user (created if needed) to a workspace with a role and optional clearances."

    def add_arguments(self, parser):
        parser.add_argument("path", help="<org-slug>/<workspace-slug>")
        parser.add_argument("username")
        parser.add_argument("--role", choices=Role.values, required=True)
        parser.add_argument("--kind", choices=PrincipalKind.values, default=PrincipalKind.HUMAN)
        parser.add_argument("--password", help="Login password (humans only)")
        parser.add_argument(
            "--clearance",
            action="extend",
            nargs="+",
            default=[],
            choices=DATA_CLASSES,
            metavar="DATA_CLASS",
            help=(
                "Data class(es) the user may review: --clearance a b, or repeat the option. "
                f"One of: {', '.join(DATA_CLASSES)}"
            ),
        )
        parser.add_argument("--email", default="")

    def handle(self, *args, path, username, role, kind, password, clearance, email, **options):
        try:
            workspace = workspace_get(path)
            result = member_add(
                workspace=workspace,
                username=username,
                role=role,
                kind=kind,
                password=password,
                clearances=clearance,
                email=email,
            )
        except FlowgateError as exc:
            raise CommandError(exc.message) from exc
        verb = "created" if result.user_created else "updated"
        self.stdout.write(f"{verb} {username} ({kind}) as {role} in {workspace.path}")
