"""The audit chain writer, its verifier and the append-only trigger (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import uuid
from decimal import Decimal

import pytest
from django.db import DatabaseError, ProgrammingError, connection, transaction

from governance.actors import Actor
from governance.audit import (
    GENESIS_HASH,
    AuditOutsideTransaction,
    audit_record,
    verify_chain,
)
from governance.models import AuditChainHead, AuditEvent, Membership, Workspace
from tests.factories import append_events
from tests.support.audit import tampering

KEY_ID = "test1"  # the signing key of config/settings/test.py


def event(workspace: Workspace, seq: int) -> AuditEvent:
    return AuditEvent.objects.get(workspace=workspace, seq=seq)


# --- Writing ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_writer_refuses_outside_a_transaction(workspace):
    assert not connection.in_atomic_block
    with pytest.raises(AuditOutsideTransaction):
        audit_record(
            workspace=workspace, event_type="test.event", actor=Actor.system(workspace), payload={}
        )
    assert not AuditEvent.objects.exists()
    assert AuditChainHead.objects.get(workspace=workspace).seq == 0


def test_events_form_a_contiguous_linked_chain(workspace):
    append_events(workspace, 3)
    append_events(workspace, 2)

    events = list(AuditEvent.objects.filter(workspace=workspace).order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    for previous, current in itertools.pairwise(events):
        assert current.prev_hash == previous.hash
    assert {e.key_id for e in events} == {KEY_ID}
    assert len({e.hash for e in events}) == 5

    head = AuditChainHead.objects.get(workspace=workspace)
    assert (head.seq, head.hash) == (5, events[-1].hash)
    result = verify_chain(workspace)
    assert result.ok, result.as_dict()
    assert result.as_dict() == {
        "ok": True,
        "workspace": "acme/ops",
        "events": 5,
        "head": {"seq": 5, "hash": events[-1].hash},
    }


def test_an_empty_chain_verifies(workspace):
    assert verify_chain(workspace).as_dict() == {
        "ok": True,
        "workspace": "acme/ops",
        "events": 0,
        "head": {"seq": 0, "hash": None},
    }


def test_each_workspace_has_its_own_chain(workspace, other_workspace):
    append_events(workspace, 3)
    append_events(other_workspace, 2)
    first = AuditEvent.objects.filter(workspace=other_workspace).order_by("seq").first()
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert verify_chain(workspace).events == 3
    assert verify_chain(other_workspace).events == 2
    assert verify_chain(other_workspace).ok


def test_records_the_actor(workspace, admin):
    membership = Membership.objects.select_related("user", "workspace").get(user=admin.user)
    with transaction.atomic():
        recorded = audit_record(
            workspace=workspace,
            event_type="automation.created",
            actor=Actor.for_member(membership),
            payload={"automation_id": "a1"},
        )
    stored = AuditEvent.objects.get(pk=recorded.pk)
    assert (stored.actor_kind, stored.actor_id) == ("human", "ada-admin")
    assert stored.payload == {"automation_id": "a1"}
    assert verify_chain(workspace).ok


def test_payload_is_stored_as_it_reads_back(workspace):
    """Values JSON cannot hold natively become strings before hashing, so the row verifies."""
    moment = dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    with transaction.atomic():
        audit_record(
            workspace=workspace,
            event_type="test.types",
            actor=Actor.system(workspace),
            payload={"at": moment, "id": ident, "amount": Decimal("1.10"), "nested": {"b": 1}},
        )
    stored = event(workspace, 1).payload
    assert stored == {
        "at": "2025-01-02T03:04:05.678Z",
        "id": str(ident),
        "amount": "1.10",
        "nested": {"b": 1},
    }
    assert verify_chain(workspace).ok


@pytest.mark.parametrize(
    "value", [1e16, 1.2345678901234567e25, 1e300, -0.0, 1.5e-05, 0.1, 10.0, 2**70, "ü €"]
)
def test_payload_numbers_verify_after_the_jsonb_round_trip(workspace, value):
    """jsonb keeps exact numerics: 1e+16 reads back as an int and -0.0 as 0.0; both still verify."""
    with transaction.atomic():
        audit_record(
            workspace=workspace,
            event_type="test.number",
            actor=Actor.system(workspace),
            payload={"value": value, "list": [value]},
        )
    result = verify_chain(workspace)
    assert result.ok, result.as_dict()


# --- Keys ------------------------------------------------------------------------------------

OLD_KEYS = "test1:" + "11" * 32
ROTATED_KEYS = "new2:" + "33" * 32 + ",test1:" + "11" * 32


def test_rotated_key_signs_new_events_and_old_events_still_verify(workspace, settings):
    settings.AUDIT_HMAC_KEYS = OLD_KEYS
    append_events(workspace, 2)
    settings.AUDIT_HMAC_KEYS = ROTATED_KEYS
    append_events(workspace, 2)

    key_ids = list(
        AuditEvent.objects.filter(workspace=workspace)
        .order_by("seq")
        .values_list("key_id", flat=True)
    )
    assert key_ids == ["test1", "test1", "new2", "new2"]
    assert verify_chain(workspace).ok


def test_unknown_key_id_is_reported(workspace, settings):
    settings.AUDIT_HMAC_KEYS = OLD_KEYS
    append_events(workspace, 2)
    settings.AUDIT_HMAC_KEYS = ROTATED_KEYS
    append_events(workspace, 2)
    settings.AUDIT_HMAC_KEYS = OLD_KEYS  # the new key was dropped from the configuration

    result = verify_chain(workspace)
    assert not result.ok
    assert result.first_break.seq == 3
    assert result.first_break.event_id == event(workspace, 3).pk
    assert "unknown key id 'new2'" in result.first_break.reason


def test_a_key_listed_under_another_id_does_not_verify(workspace, settings):
    """The key id is part of what is checked: the same event under another key id fails."""
    append_events(workspace, 3)
    with tampering():
        AuditEvent.objects.filter(workspace=workspace, seq=2).update(key_id="old0")
    result = verify_chain(workspace)
    assert (result.first_break.seq, result.first_break.reason) == (
        2,
        "hash does not match the event's contents (edited)",
    )


# --- Tampering -------------------------------------------------------------------------------

TAMPERED = 3  # of a 5-event chain


@pytest.mark.parametrize(
    ("field", "new_value"),
    [
        ("event_type", "automation.deleted"),
        ("actor_kind", "human"),
        ("actor_id", "mallory"),
        ("payload", {"n": 2, "note": "event 2", "extra": True}),
        ("created_at", None),  # one microsecond later, set below
        ("prev_hash", "f" * 64),
        ("hash", "e" * 64),
        ("key_id", "old0"),
        ("seq", 1000),
    ],
)
def test_editing_any_stored_field_is_detected(workspace, field, new_value):
    append_events(workspace, 5)
    target = event(workspace, TAMPERED)
    if field == "created_at":
        new_value = target.created_at + dt.timedelta(microseconds=1)
    assert getattr(target, field) != new_value
    with tampering():
        AuditEvent.objects.filter(pk=target.pk).update(**{field: new_value})

    result = verify_chain(workspace)
    assert not result.ok
    assert result.first_break.seq == TAMPERED, result.as_dict()
    if field == "seq":
        # The walk finds event 4 where 3 should be: the gap is reported at seq 3.
        assert "expected seq 3, found 4" in result.first_break.reason
    else:
        assert result.first_break.event_id == target.pk
    assert result.head == {}


def test_editing_the_first_and_last_events_is_detected(workspace):
    append_events(workspace, 5)
    with tampering():
        AuditEvent.objects.filter(workspace=workspace, seq=5).update(payload={"n": 0})
    assert verify_chain(workspace).first_break.seq == 5

    with tampering():
        AuditEvent.objects.filter(workspace=workspace, seq=1).update(actor_id="mallory")
    assert verify_chain(workspace).first_break.seq == 1


@pytest.mark.parametrize("deleted", [1, 3])
def test_deleting_an_event_is_detected(workspace, deleted):
    append_events(workspace, 5)
    with tampering():
        AuditEvent.objects.filter(workspace=workspace, seq=deleted).delete()

    result = verify_chain(workspace)
    assert result.first_break.seq == deleted
    assert result.first_break.event_id == event(workspace, deleted + 1).pk
    assert "event missing or reordered" in result.first_break.reason


def test_deleting_the_tail_is_detected_by_the_head_row(workspace):
    append_events(workspace, 5)
    with tampering():
        AuditEvent.objects.filter(workspace=workspace, seq__gte=4).delete()

    result = verify_chain(workspace)
    assert not result.ok
    assert result.events == 3
    assert result.first_break.seq == 4
    assert result.first_break.event_id is None
    assert result.first_break.reason == (
        "chain head is at seq 5 and the last event is seq 3 (events missing from the tail)"
    )


def test_a_head_row_moved_back_is_detected(workspace):
    """Rewinding the head row (it has no trigger) leaves events past it: reported, not ignored."""
    append_events(workspace, 5)
    AuditChainHead.objects.filter(workspace=workspace).update(seq=3, hash=event(workspace, 3).hash)

    result = verify_chain(workspace)
    assert not result.ok
    assert result.first_break.seq == 4
    assert result.first_break.reason == (
        "chain head is at seq 3 and the last event is seq 5 (the head row was moved back)"
    )


def test_a_head_row_with_another_hash_is_detected(workspace):
    append_events(workspace, 3)
    AuditChainHead.objects.filter(workspace=workspace).update(hash="a" * 64)
    result = verify_chain(workspace)
    assert not result.ok
    assert result.first_break.seq == 4
    assert "the head's hash is not that event's hash" in result.first_break.reason


def test_swapping_two_events_seq_is_detected(workspace):
    append_events(workspace, 5)
    second, third = event(workspace, 2).pk, event(workspace, 3).pk
    with tampering():
        # Through a free seq: (workspace, seq) stays unique at every step.
        AuditEvent.objects.filter(pk=second).update(seq=-2)
        AuditEvent.objects.filter(pk=third).update(seq=2)
        AuditEvent.objects.filter(pk=second).update(seq=3)

    result = verify_chain(workspace)
    assert result.first_break.seq == 2
    assert result.first_break.event_id == third
    assert "prev_hash" in result.first_break.reason


def test_swapping_two_events_contents_is_detected(workspace):
    append_events(workspace, 5)
    fields = ["event_type", "payload", "created_at", "prev_hash", "hash"]
    second = AuditEvent.objects.filter(workspace=workspace, seq=2).values(*fields).get()
    third = AuditEvent.objects.filter(workspace=workspace, seq=3).values(*fields).get()
    with tampering():
        AuditEvent.objects.filter(workspace=workspace, seq=2).update(**third)
        AuditEvent.objects.filter(workspace=workspace, seq=3).update(**second)

    result = verify_chain(workspace)
    assert result.first_break.seq == 2


def test_a_forged_event_without_the_key_is_detected(workspace):
    """Appending a plausible event (right seq and prev_hash) needs the key; without it, caught."""
    append_events(workspace, 2)
    last = event(workspace, 2)
    AuditEvent.objects.create(
        workspace=workspace,
        seq=3,
        event_type="automation.deleted",
        actor_kind="system",
        actor_id="system:flowgate",
        payload={},
        created_at=last.created_at,
        prev_hash=last.hash,
        hash="b" * 64,
        key_id=KEY_ID,
    )
    AuditChainHead.objects.filter(workspace=workspace).update(seq=3, hash="b" * 64)
    result = verify_chain(workspace)
    assert result.first_break.seq == 3
    assert "edited" in result.first_break.reason


# --- The append-only trigger -----------------------------------------------------------------


def _snapshot(pk: int) -> dict:
    return AuditEvent.objects.filter(pk=pk).values().get()


def test_trigger_refuses_update(workspace):
    (pk,) = append_events(workspace, 1)
    before = _snapshot(pk)
    with pytest.raises(ProgrammingError, match="append-only: UPDATE refused"), transaction.atomic():
        AuditEvent.objects.filter(pk=pk).update(payload={"edited": True})
    assert _snapshot(pk) == before

    stored = AuditEvent.objects.get(pk=pk)
    stored.event_type = "edited"
    with pytest.raises(ProgrammingError, match="append-only: UPDATE refused"), transaction.atomic():
        stored.save(update_fields=["event_type"])
    assert _snapshot(pk) == before


def test_trigger_refuses_delete(workspace):
    (pk,) = append_events(workspace, 1)
    before = _snapshot(pk)
    with pytest.raises(ProgrammingError, match="append-only: DELETE refused"), transaction.atomic():
        AuditEvent.objects.filter(pk=pk).delete()
    assert _snapshot(pk) == before


@pytest.mark.django_db(transaction=True)
def test_trigger_refuses_truncate_without_maintenance_mode(workspace):
    # Transactional: TRUNCATE is refused anyway while the inserting transaction still has
    # deferred foreign-key checks pending, which would hide what the trigger does.
    (pk,) = append_events(workspace, 1)
    before = _snapshot(pk)
    with (
        pytest.raises(ProgrammingError, match="append-only: TRUNCATE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL flowgate.audit_maintenance = 'off'")
        cursor.execute("TRUNCATE governance_auditevent")
    assert _snapshot(pk) == before
    assert verify_chain(workspace).ok


def test_trigger_error_is_a_database_error(workspace):
    """Callers see a DatabaseError (insufficient_privilege), never a silent no-op."""
    (pk,) = append_events(workspace, 1)
    with pytest.raises(DatabaseError) as info, transaction.atomic():
        AuditEvent.objects.filter(pk=pk).delete()
    assert info.value.__cause__.sqlstate == "42501"


# --- Concurrency -----------------------------------------------------------------------------


def _run_threads(count: int, target) -> list[BaseException]:
    """Start `count` threads together on `target(index)`; returns what they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            target(index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    return errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_one_contiguous_chain(workspace):
    threads, per_thread = 8, 200

    def append(index: int) -> None:
        actor = Actor.system(workspace, name=f"writer-{index}")
        for n in range(per_thread):
            with transaction.atomic():
                audit_record(
                    workspace=workspace,
                    event_type="test.concurrent",
                    actor=actor,
                    payload={"writer": index, "n": n},
                )

    assert _run_threads(threads, append) == []

    seqs = list(
        AuditEvent.objects.filter(workspace=workspace).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(1, threads * per_thread + 1))
    assert AuditChainHead.objects.get(workspace=workspace).seq == threads * per_thread
    result = verify_chain(workspace)
    assert result.ok, result.as_dict()
    assert result.events == threads * per_thread


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_appends_create_one_head(workspace, monkeypatch):
    """The chain head row does not exist yet: every writer's first UPDATE finds nothing, they
    race to insert it (`_bump_head`), exactly one insert wins and the chain stays one."""
    AuditChainHead.objects.filter(workspace=workspace).delete()
    threads, per_thread = 8, 25
    inserts: list[int] = []
    create_heads = AuditChainHead.objects.bulk_create

    def counting_create(*args, **kwargs):
        inserts.append(1)
        return create_heads(*args, **kwargs)

    monkeypatch.setattr(AuditChainHead.objects, "bulk_create", counting_create)

    def append(index: int) -> None:
        actor = Actor.system(workspace, name=f"writer-{index}")
        for n in range(per_thread):
            with transaction.atomic():
                audit_record(
                    workspace=workspace,
                    event_type="test.first",
                    actor=actor,
                    payload={"writer": index, "n": n},
                )

    assert _run_threads(threads, append) == []

    assert inserts  # the insert path ran (usually in several writers at once)
    seqs = list(
        AuditEvent.objects.filter(workspace=workspace).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(1, threads * per_thread + 1))
    assert AuditChainHead.objects.filter(workspace=workspace).count() == 1
    assert AuditChainHead.objects.get(workspace=workspace).seq == threads * per_thread
    first = AuditEvent.objects.get(workspace=workspace, seq=1)
    assert first.prev_hash == GENESIS_HASH
    result = verify_chain(workspace)
    assert result.ok, result.as_dict()


@pytest.mark.django_db(transaction=True)
def test_verifying_while_events_are_appended_reports_no_false_break(workspace):
    """Appends committed during a walk must not look like a chain whose head fell behind."""
    writers, per_writer = 4, 150
    writers_left = threading.Semaphore(0)
    verdicts: list[dict] = []

    def work(index: int) -> None:
        if index == writers:  # the verifier: walks the chain until every writer is done
            finished = 0
            while finished < writers:
                verdicts.append(verify_chain(workspace).as_dict())
                finished += writers_left.acquire(blocking=False)
            return
        actor = Actor.system(workspace, name=f"writer-{index}")
        try:
            for n in range(per_writer):
                with transaction.atomic():
                    audit_record(
                        workspace=workspace,
                        event_type="test.concurrent",
                        actor=actor,
                        payload={"n": n},
                    )
        finally:
            writers_left.release()

    assert _run_threads(writers + 1, work) == []
    assert len(verdicts) > 1
    assert [v for v in verdicts if not v["ok"]] == []
    assert verify_chain(workspace).events == writers * per_writer
