"""The one place node kinds are registered: kind name → `execute(ctx) -> dict`.

Built-ins are `agent`, `http` and `approval`. A deployment adds kinds with the setting
`FLOWGATE_NODE_KINDS` (`{"kind": "dotted.path.to.execute[:key[:key…]]"}`, from the env var of
the same name as `kind=dotted.path[:key…][,kind=dotted.path[:key…]]`). The `:key` suffixes are
the node keys the kind takes besides those every node takes (`automations.flow.nodes.NODE_KEYS`);
flow validation refuses any other key on its nodes. Added kinds cannot replace a built-in:
flow validation, the engine and every surface treat `agent`, `http` and `approval` specially,
so a replacement would silently change what a stored flow means.

`known_kinds()` reads names only and never imports a handler, so flow validation stays cheap and
cannot run deployment code; `node_kind()` imports a handler on first use. Both results are cached
per process and dropped when the setting changes (`override_settings` sends `setting_changed`).
The caches only mirror settings, so nothing is decided by process-local state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from automations.nodes.base import NodeContext, NodeFailure, NodeKind

SETTING = "FLOWGATE_NODE_KINDS"

# Kind names are stored in flows, shown in errors and compared after trimming and lowercasing
# (flow validation), so configured names must already be in that form.
_KIND_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def execute_approval(ctx: NodeContext) -> dict[str, Any]:
    """Approval nodes are gates: the engine opens them and people decide them; no worker runs them.

    Registered so the kind is known everywhere; reaching this is an engine bug, reported as a
    node failure rather than passing silently.
    """
    raise NodeFailure(
        f"node {ctx.node_id!r} is an approval gate; the engine opens it instead of executing it",
        failure_kind="not_executable",
    )


BUILTIN_KINDS: Mapping[str, str] = {
    "agent": "automations.nodes.agent.execute",
    "http": "automations.nodes.http.execute",
    "approval": "automations.nodes.registry.execute_approval",
}
# The node keys each built-in kind takes besides the common ones; original-style approval nodes
# carry an `agent_id` too.
BUILTIN_KEYS: Mapping[str, frozenset[str]] = {
    "agent": frozenset({"agent_id"}),
    "http": frozenset({"http"}),
    "approval": frozenset({"gate", "agent_id"}),
}


class UnknownNodeKind(NodeFailure, LookupError):
    """A kind no handler is registered for (e.g. a run snapshot naming a kind since removed)."""

    def __init__(self, name: object):
        known = ", ".join(sorted(known_kinds()))
        super().__init__(
            f"unknown node kind {name!r}; registered kinds: {known}",
            failure_kind="unknown_node_kind",
        )
        self.kind = name


def node_kind(name: str) -> NodeKind:
    """The `execute(ctx) -> dict` registered for `name`; raises `UnknownNodeKind` otherwise.

    A configured dotted path that cannot be imported raises `ImproperlyConfigured`.
    """
    path = _kind_paths().get(name) if isinstance(name, str) else None
    if path is None:
        raise UnknownNodeKind(name)
    return _import_kind(name, path)


def known_kinds() -> frozenset[str]:
    """Every registered kind name: the built-ins plus those from `FLOWGATE_NODE_KINDS`."""
    return frozenset(_kind_paths())


def kind_keys(name: str) -> frozenset[str]:
    """The node keys `name` takes besides the common ones (empty for an unknown kind)."""
    return _kind_keys().get(name, frozenset())


@cache
def _kind_paths() -> Mapping[str, str]:
    return {name: path for name, (path, _) in _kinds().items()}


@cache
def _kind_keys() -> Mapping[str, frozenset[str]]:
    return {name: keys for name, (_, keys) in _kinds().items()}


@cache
def _kinds() -> Mapping[str, tuple[str, frozenset[str]]]:
    """kind → (dotted path, node keys), the built-ins first."""
    configured = getattr(settings, SETTING, None) or {}
    if not isinstance(configured, Mapping):
        raise ImproperlyConfigured(f"{SETTING} must be a dict of kind name -> dotted path")
    kinds = {name: (path, BUILTIN_KEYS[name]) for name, path in BUILTIN_KINDS.items()}
    for name, value in configured.items():
        if name in BUILTIN_KINDS:
            raise ImproperlyConfigured(f"{SETTING} cannot replace the built-in kind {name!r}")
        if not isinstance(name, str) or not _KIND_NAME.fullmatch(name):
            raise ImproperlyConfigured(
                f"{SETTING}: kind {name!r} must be lowercase letters, digits, '-' or '_', "
                "starting with a letter"
            )
        path, *keys = value.split(":") if isinstance(value, str) else (value,)
        if not isinstance(path, str) or "." not in path:
            raise ImproperlyConfigured(
                f"{SETTING}: kind {name!r} needs a dotted path to its execute function, "
                f"not {value!r}"
            )
        kinds[name] = (path.strip(), frozenset(key.strip() for key in keys if key.strip()))
    return kinds


@cache
def _import_kind(name: str, path: str) -> NodeKind:
    try:
        handler = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"node kind {name!r}: cannot import {path!r}: {exc}") from exc
    if not callable(handler):
        raise ImproperlyConfigured(f"node kind {name!r}: {path!r} is not callable")
    return handler


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs: object) -> None:
    if setting == SETTING:
        _kinds.cache_clear()
        _kind_paths.cache_clear()
        _kind_keys.cache_clear()
        _import_kind.cache_clear()


# --- gate kinds -------------------------------------------------------------------------------


class GateKind(Protocol):
    """What the engine and the run state machine need of a kind of gate (a node people
    decide). The app that owns the gate's data registers one in its `AppConfig.ready()`
    (`approvals` registers `approval`); the engine never imports it.

    Both methods run inside the caller's transaction, with the run rows already locked (the
    lock order run → gate → audit head); anything they announce is sent after commit.
    """

    def open(
        self,
        *,
        run: Any,
        node_id: str,
        gate: dict[str, Any],
        upstream_outputs: dict[str, Any],
        downstream_plan: list[dict[str, Any]],
        now: datetime,
    ) -> dict[str, Any]:
        """Open the next round of `node_id`'s gate for `run` (the engine then parks the run
        on it) over the outputs it reviews and the plan an approval covers
        (`RunSpec.downstream_plan`); return the metadata of the run's `approval_gate_opened`
        lifecycle event."""
        ...

    def supersede(self, *, run_pks: list[int], now: datetime) -> dict[int, list[str]]:
        """Close the open gates of these runs, which stopped waiting on them (cancelled,
        paused, reset or repaired); return the closed gate ids by run primary key."""
        ...


_gate_kinds: dict[str, GateKind] = {}


def register_gate_kind(name: str, kind: GateKind) -> None:
    """Register the gate implementation of node kind `name` (idempotent for the same object)."""
    if name not in BUILTIN_KINDS and name not in known_kinds():
        raise ImproperlyConfigured(f"gate kind {name!r} is not a registered node kind")
    _gate_kinds[name] = kind


def gate_kind(name: str) -> GateKind:
    """The gate implementation registered for node kind `name`."""
    try:
        return _gate_kinds[name]
    except KeyError:
        raise ImproperlyConfigured(
            f"no gate kind registered for node kind {name!r} (is its app installed?)"
        ) from None


def gate_kinds() -> list[GateKind]:
    """Every registered gate implementation (to supersede the open gates of a run)."""
    return list(_gate_kinds.values())
