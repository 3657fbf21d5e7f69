"""`manage.py audit_verify [--workspace <org>/<ws>]`: verify chains; exit 1 if one is broken."""

from django.core.management.base import BaseCommand, CommandError

from governance.audit import verify_chain
from governance.errors import FlowgateError
from governance.models import AuditChainHead, Workspace
from governance.services import workspace_get


class Command(BaseCommand):
    help = (
        "Verify the audit hash chain of every workspace (or one) and print one line per "
        "workspace; exits with status 1 if any chain is broken."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", help="Only this workspace: <org-slug>/<workspace-slug>")

    def handle(self, *args, workspace=None, **options):
        if workspace:
            try:
                workspaces = [workspace_get(workspace)]
            except FlowgateError as exc:
                raise CommandError(exc.message) from exc
        else:
            workspaces = list(
                Workspace.objects.select_related("organization").order_by(
                    "organization__slug", "slug"
                )
            )
        # The stored head, shown for broken chains (a verified head exists only for intact ones).
        stored_heads = dict(
            AuditChainHead.objects.filter(workspace__in=workspaces).values_list(
                "workspace_id", "seq"
            )
        )
        broken = []
        for ws in workspaces:
            result = verify_chain(ws)
            if result.ok:
                self.stdout.write(
                    f"{ws.path}: {self.style.SUCCESS('ok')} events={result.events} "
                    f"head_seq={result.head['seq']}"
                )
                continue
            broken.append(ws.path)
            fault = result.first_break
            self.stdout.write(
                f"{ws.path}: {self.style.ERROR('BROKEN')} events={result.events} "
                f"head_seq={stored_heads.get(ws.pk)} first_break seq={fault.seq} "
                f"event_id={fault.event_id}: {fault.reason}"
            )
        if broken:
            raise CommandError(
                f"Audit chain broken in {len(broken)} workspace(s): {', '.join(broken)}"
            )
        self.stdout.write(f"{len(workspaces)} audit chain(s) verified, none broken")
