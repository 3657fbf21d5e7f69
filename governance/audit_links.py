"""Links from audit events to the objects they concern (a run, a gate, an automation).

An audit event names its objects by id in its payload (`runID`, `gateID`, `automationID`), but
those objects belong to higher apps this one may not import. So they register a resolver here
from their `AppConfig.ready()`: given the `(workspace id, object id)` pairs of one page of
events, it answers the admin URL of each object it found, in one query (or none), so a page of
audit events costs the same number of queries whatever its length or mix of events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

# (workspace id, object id) pairs -> the admin URL of each object found.
Resolver = Callable[[set[tuple[int, str]]], dict[tuple[int, str], str]]


@dataclass(frozen=True)
class AuditLink:
    """One payload key an event may carry, the object's name, and how to find its page."""

    key: str
    label: str
    resolve: Resolver


@dataclass(frozen=True)
class ObjectLink:
    label: str
    object_id: str
    url: str


_LINKS: dict[str, AuditLink] = {}


def register_audit_link(key: str, label: str, resolve: Resolver) -> None:
    """Link events whose payload has `key` (idempotent: a repeated `ready()` replaces it)."""
    _LINKS[key] = AuditLink(key, label, resolve)


def audit_event_links(events: Iterable) -> dict[int, list[ObjectLink]]:
    """Event pk -> the links of the objects it names (in registration order); one resolver
    call per registered key for the whole batch."""
    events = list(events)
    links: dict[int, list[ObjectLink]] = {event.pk: [] for event in events}
    for link in _LINKS.values():
        wanted = {
            (event.workspace_id, value)
            for event in events
            if isinstance(value := (event.payload or {}).get(link.key), str) and value
        }
        if not wanted:
            continue
        found = link.resolve(wanted)
        for event in events:
            value = (event.payload or {}).get(link.key)
            url = found.get((event.workspace_id, value)) if isinstance(value, str) else None
            if url:
                links[event.pk].append(ObjectLink(link.label, value, url))
    return links
