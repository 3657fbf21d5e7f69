"""factory_boy factories for the data model; services are used where invariants matter."""

from __future__ import annotations

import factory

from automations.models import Automation
from governance.models import Membership, Organization, PrincipalKind, Role, User, Workspace


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"org{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    organization = factory.SubFactory(OrganizationFactory)
    slug = factory.Sequence(lambda n: f"ws{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    kind = PrincipalKind.HUMAN
    password = factory.django.Password("pw-for-tests")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    workspace = factory.SubFactory(WorkspaceFactory)
    role = Role.VIEWER


def simple_flow() -> dict:
    return {
        "nodes": [
            {"node_id": "draft", "kind": "agent", "agent_id": "writer", "objective": "Draft"},
            {
                "node_id": "approval",
                "kind": "approval",
                "depends_on": ["draft"],
                "gate": {"decisions": ["approve", "rework", "cancel"], "rework_targets": ["draft"]},
            },
        ]
    }


def simple_agents() -> list[dict]:
    return [
        {
            "agent_id": "writer",
            "template_id": "template-a",
            "display_name": "Writer",
            "model_policy": {"provider": "echo", "model": "echo-1"},
        }
    ]


class AutomationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Automation

    workspace = factory.SubFactory(WorkspaceFactory)
    automation_id = factory.Sequence(lambda n: f"auto-{n}")
    name = factory.Sequence(lambda n: f"Automation {n}")
    flow = factory.LazyFunction(simple_flow)
    agents = factory.LazyFunction(simple_agents)
    execution = factory.LazyFunction(lambda: {"max_parallel": 1})
    created_by = factory.SubFactory(UserFactory)
