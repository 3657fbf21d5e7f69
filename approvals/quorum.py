"""The two-person rule: how many distinct people, and from which workspace groups, must approve a
gate before it settles `approve` (`policy.quorum`, parsed by `automations.flow.gate_policy`).

The counting rules, kept out of the decision service so they read as one page:

- an approval is a `GateDecision` with `decision = approve` on the gate *opening*; the ones
  that do not complete the quorum are recorded with `settles = False` and move nothing, the one
  that completes it is the opening's one settling decision (`one_settling_decision_per_gate`);
- one approval per person per opening: the person counted is whose authority was used (the
  delegator when a delegate decided for them, `approvals.delegation`), and one human cannot
  approve twice either, even on behalf of someone else (two partial unique constraints on
  `GateDecision`);
- a person counts towards a group's requirement when, at the time they approve, they belong to
  that workspace group (`WorkspaceGroup`); the groups are recorded on the approval, so a later
  change of membership never changes a count;
- approvals belong to their opening: a rework opens a new one that starts from none, and a
  superseded or expired opening takes no decision at all.

`Gate.quorum` holds the opening's progress as last written under the gate's lock (what the run
JSON, the pending list, the approval page and the chat cards show, without a query per gate);
the approval rows stay the record it is computed from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from governance.models import WorkspaceGroup

ALREADY_APPROVED = "AUTOMATION_V2_GATE_ALREADY_APPROVED"
ALREADY_APPROVED_MESSAGE = (
    "You have already approved this gate; it needs approvals from other people to settle"
)


@dataclass(frozen=True)
class GroupRequirement:
    group: str
    approvals: int


@dataclass(frozen=True)
class Approval:
    """One counted approval: who approved, for whom (under delegation) and their groups."""

    approver: str
    on_behalf_of: str | None = None
    groups: tuple[str, ...] = ()

    @property
    def counted(self) -> str:
        return self.on_behalf_of or self.approver

    def as_json(self) -> dict[str, Any]:
        return {
            "approver": self.approver,
            "on_behalf_of": self.on_behalf_of,
            "groups": list(self.groups),
        }


@dataclass(frozen=True)
class Quorum:
    """A gate's quorum; `Quorum()` (one approval, no groups) is today's single decision."""

    required_approvals: int = 1
    groups: tuple[GroupRequirement, ...] = ()

    @classmethod
    def of(cls, value: Any) -> Quorum:
        if not isinstance(value, dict):
            return cls()
        return cls(
            required_approvals=int(value.get("required_approvals") or 1),
            groups=tuple(
                GroupRequirement(group=g["group"], approvals=int(g["approvals"]))
                for g in value.get("groups") or ()
            ),
        )

    @property
    def single(self) -> bool:
        """One approval by anyone eligible settles the gate (no quorum)."""
        return self.required_approvals <= 1 and not self.groups

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(g.group for g in self.groups)

    def progress(self, approvals: list[Approval]) -> dict[str, Any]:
        """The opening's progress as shown everywhere ("1 of 2 approvals (finance: 0 of 1)")."""
        groups = [
            {
                "group": g.group,
                "required": g.approvals,
                "approvals": sum(1 for a in approvals if g.group in a.groups),
            }
            for g in self.groups
        ]
        met = len(approvals) >= self.required_approvals and all(
            g["approvals"] >= g["required"] for g in groups
        )
        summary = f"{len(approvals)} of {self.required_approvals} approvals"
        if groups:
            parts = ", ".join(f"{g['group']}: {g['approvals']} of {g['required']}" for g in groups)
            summary += f" ({parts})"
        return {
            "required_approvals": self.required_approvals,
            "approvals": len(approvals),
            "groups": groups,
            "approved_by": [a.as_json() for a in approvals],
            "met": met,
            "summary": summary,
        }

    def initial(self) -> dict[str, Any]:
        """The progress of a new opening ({} without a quorum: nothing to show)."""
        return {} if self.single else self.progress([])


def approvals_of(gate) -> list[Approval]:
    """The approvals recorded on this opening so far, oldest first (one query)."""
    rows = (
        gate.decision_records.filter(decision="approve")
        .order_by("decided_at", "id")
        .values_list("decided_by__username", "on_behalf_of__username", "metadata")
    )
    return [
        Approval(
            approver=approver or "(deleted user)",
            on_behalf_of=on_behalf_of,
            groups=tuple((metadata or {}).get("quorum_groups") or ()),
        )
        for approver, on_behalf_of, metadata in rows
    ]


def member_groups(*, workspace, user, quorum: Quorum) -> tuple[str, ...]:
    """The quorum's groups `user` belongs to in `workspace` now (one query; none asked for,
    no query)."""
    if not quorum.groups:
        return ()
    names = set(
        WorkspaceGroup.objects.filter(
            workspace=workspace, group__user=user, group__name__in=quorum.group_names
        ).values_list("group__name", flat=True)
    )
    return tuple(name for name in quorum.group_names if name in names)


def progress_text(progress: dict[str, Any] | None) -> str:
    """The summary and who approved, in words ("1 of 2 approvals (finance: 0 of 1); approved by
    alice"), or "" for a gate without a quorum."""
    if not progress:
        return ""
    names = []
    for approval in progress.get("approved_by") or ():
        name = approval["approver"]
        if approval.get("on_behalf_of"):
            name += f" (for {approval['on_behalf_of']})"
        names.append(name)
    text = progress.get("summary") or ""
    return f"{text}; approved by {', '.join(names)}" if names else text


def recorded_message(progress: dict[str, Any] | None) -> str:
    """What the approver is told when their approval counted but did not settle the gate."""
    return (
        f"Your approval is recorded: {(progress or {}).get('summary', '')}. The gate settles "
        "when the remaining approvals are given."
    )


def approved_by(progress: dict[str, Any] | None, username: str) -> bool:
    """Whether `username` approved this opening, themselves or for someone."""
    return any(
        username in (a["approver"], a.get("on_behalf_of"))
        for a in (progress or {}).get("approved_by") or ()
    )
