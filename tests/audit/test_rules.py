"""The chain's hashing and verification, and change sets, without a database."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.audit import rules

KEY = b"k"
KEYS = rules.AuditKeys(active_id="a1", keys={"a1": KEY})


def _contents(n: int) -> list[rules.EventContent]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        rules.EventContent(
            id=uuid.uuid4(),
            occurred_at=start + timedelta(seconds=i),
            actor_user_id=None,
            actor_org_id=None,
            action="case.created",
            entity_type="case",
            entity_id=str(i),
            request_id=None,
            changes={"n": {"to": i}},
        )
        for i in range(n)
    ]


def _chain(n: int) -> list[rules.Link]:
    return rules.link(KEYS, _contents(n), chain=3, seq=0, head=rules.GENESIS_HASH)


def _verify(links: list[rules.Link], head: rules.Link | None = None) -> rules.Break | None:
    last = head or links[-1]
    return rules.verify_chain(KEYS, 3, links, head_seq=last.seq, head_hash=last.hash)


def test_an_untouched_chain_verifies() -> None:
    assert _verify(_chain(5)) is None


def test_an_altered_event_is_named() -> None:
    links = _chain(5)
    altered = dataclasses.replace(
        links[2], content=dataclasses.replace(links[2].content, action="case.deleted")
    )
    found = _verify([*links[:2], altered, *links[3:]])
    assert found is not None
    assert found.event_id == links[2].content.id
    assert "altered" in found.reason


def test_a_deleted_event_breaks_at_the_next_one() -> None:
    links = _chain(5)
    found = _verify([*links[:2], *links[3:]])
    assert found is not None
    assert found.event_id == links[3].content.id


def test_a_deleted_last_event_is_caught_by_the_head() -> None:
    links = _chain(5)
    found = _verify(links[:4], head=links[4])
    assert found is not None
    assert found.event_id is None
    assert "end" in found.reason


def test_swapped_events_are_caught() -> None:
    links = _chain(5)
    a, b = links[1], links[2]
    swapped = [
        links[0],
        dataclasses.replace(a, seq=b.seq),
        dataclasses.replace(b, seq=a.seq),
        *links[3:],
    ]
    swapped.sort(key=lambda link: link.seq)
    found = _verify(swapped)
    assert found is not None
    assert found.seq == 2


def test_a_chain_recomputed_without_the_key_does_not_verify() -> None:
    guess = rules.AuditKeys(active_id="a1", keys={"a1": b"guess"})
    forged = rules.link(guess, _contents(3), chain=3, seq=0, head=rules.GENESIS_HASH)
    assert _verify(forged) is not None


def test_events_verify_across_a_key_rotation_while_the_old_key_is_kept() -> None:
    old = rules.link(KEYS, _contents(2), chain=3, seq=0, head=rules.GENESIS_HASH)
    rotated = rules.AuditKeys(active_id="a2", keys={"a1": KEY, "a2": b"new"})
    new = rules.link(rotated, _contents(2), chain=3, seq=2, head=old[-1].hash)
    chain = [*old, *new]
    assert [link.key_id for link in chain] == ["a1", "a1", "a2", "a2"]
    assert rules.verify_chain(rotated, 3, chain, head_seq=4, head_hash=chain[-1].hash) is None
    only_new = rules.AuditKeys(active_id="a2", keys={"a2": b"new"})
    found = rules.verify_chain(only_new, 3, chain, head_seq=4, head_hash=chain[-1].hash)
    assert found is not None
    assert "'a1'" in found.reason


def test_a_chain_checked_with_another_key_of_the_same_id_names_both_fingerprints() -> None:
    other = rules.AuditKeys(active_id="a1", keys={"a1": b"another key"})
    links = _chain(3)

    found = rules.verify_chain(other, 3, links, head_seq=3, head_hash=links[-1].hash)

    assert found is not None
    assert found.key_mismatch
    assert found.seq == 1
    assert found.reason == (
        f"these events were sealed with key a1 of fingerprint {rules.key_fingerprint(KEY)};"
        f" the configured key has fingerprint {rules.key_fingerprint(b'another key')}"
    )


def test_a_fingerprint_reveals_nothing_of_the_key_and_tells_keys_apart() -> None:
    fingerprint = rules.key_fingerprint(b"secret audit key")

    assert len(fingerprint) == 16
    assert fingerprint == rules.key_fingerprint(b"secret audit key")
    assert fingerprint != rules.key_fingerprint(b"secret audit kez")
    assert "secret" not in fingerprint


def test_an_altered_fingerprint_is_an_altered_event_not_a_key_mismatch() -> None:
    links = _chain(3)
    altered = dataclasses.replace(links[1], key_fingerprint="0" * 16)

    found = _verify([links[0], altered, links[2]])

    assert found is not None
    assert not found.key_mismatch
    assert found.seq == 2
    assert "altered" in found.reason


def test_events_from_before_fingerprints_still_verify() -> None:
    links = [dataclasses.replace(item, key_fingerprint=None) for item in _chain(3)]

    assert _verify(links) is None


def _signed(heads: list[rules.Head]) -> rules.Checkpoint:
    return rules.sign_checkpoint(
        bytes(range(32)), key_id="s1", heads=heads, created_at=datetime(2026, 11, 29, tzinfo=UTC)
    )


def test_a_signed_checkpoint_read_back_verifies_with_its_public_key() -> None:
    signed = _signed([rules.Head(1, 4, "b" * 64), rules.Head(0, 0, rules.GENESIS_HASH)])

    read = rules.parse_checkpoint(signed.to_json())
    rules.verify_signature(read, rules.public_key_of(bytes(range(32))))

    assert read == signed
    assert [h.chain for h in read.heads] == [0, 1]


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["heads"][0].update(seq=3),
        lambda d: d["heads"][0].update(hash="c" * 64),
        lambda d: d["heads"].pop(),
        lambda d: d.update(created_at="2027-01-01T00:00:00.000000+00:00"),
        lambda d: d.update(key_id="s2"),
    ],
)
def test_any_edit_of_a_checkpoint_fails_its_signature(edit: Any) -> None:
    signed = _signed([rules.Head(0, 4, "b" * 64), rules.Head(1, 2, "d" * 64)])
    document = json.loads(signed.to_json())
    edit(document)

    with pytest.raises(rules.CheckpointError, match="signature does not verify"):
        rules.verify_signature(
            rules.parse_checkpoint(json.dumps(document)), rules.public_key_of(bytes(range(32)))
        )


def test_a_head_no_longer_held_is_the_first_missing() -> None:
    signed = _signed([rules.Head(0, 4, "b" * 64), rules.Head(1, 2, "d" * 64)])

    missing = rules.missing_heads(signed, {(0, 4): "b" * 64}, {0: 6, 1: 1})
    rewritten = rules.missing_heads(signed, {(0, 4): "b" * 64, (1, 2): "e" * 64}, {0: 6, 1: 2})
    kept = rules.missing_heads(signed, {(0, 4): "b" * 64, (1, 2): "d" * 64}, {0: 6, 1: 9})

    assert missing is not None
    assert (missing.chain, missing.seq) == (1, 2)
    assert "now ends at seq 1" in missing.reason
    assert rewritten is not None
    assert "rewritten" in rewritten.reason
    assert kept is None
