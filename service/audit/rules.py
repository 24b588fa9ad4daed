"""The audit chain's hashing, verification and change sets: pure, no I/O.

Events are spread over a fixed number of chains so that concurrent writers need not queue
behind one another. Each event's hash is an HMAC over its content, its place in its chain
(chain, seq) and the previous event's hash; without the audit key nobody can recompute a
chain they altered, so an UPDATE, a DELETE or a reordering made in the database shows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

CHAIN_COUNT = 32
GENESIS_HASH = "0" * 64
_FINGERPRINT_LABEL = b"ruta-audit-key-fingerprint"


@dataclass(frozen=True)
class EventContent:
    """What an audit event says, before it is placed in a chain."""

    id: uuid.UUID
    occurred_at: datetime
    actor_user_id: uuid.UUID | None
    actor_org_id: uuid.UUID | None
    action: str
    entity_type: str
    entity_id: str
    request_id: str | None
    changes: dict[str, Any]


@dataclass(frozen=True)
class Link:
    """An event as stored: its content, its place in a chain and the key that sealed it."""

    content: EventContent
    chain: int
    seq: int
    prev_hash: str
    hash: str
    key_id: str
    # None for events sealed before fingerprints were stored.
    key_fingerprint: str | None


def key_fingerprint(key: bytes) -> str:
    """A non-secret name of a key, to tell keys apart: it does not reveal the key."""
    return hmac.new(key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class AuditKeys:
    """The key that seals new events, and every key (retired ones too) that verifies."""

    active_id: str
    keys: Mapping[str, bytes]

    @property
    def active(self) -> bytes:
        return self.keys[self.active_id]

    @cached_property
    def fingerprints(self) -> dict[str, str]:
        """The fingerprint of every configured key, by id."""
        return {key_id: key_fingerprint(key) for key_id, key in self.keys.items()}


@dataclass(frozen=True)
class Break:
    """The first place where a chain does not verify."""

    chain: int
    seq: int
    event_id: uuid.UUID | None
    reason: str
    # The events were sealed with another key than the configured one of the same id: the
    # chain cannot be checked with this configuration, which says nothing of tampering.
    key_mismatch: bool = False

    def describe(self) -> str:
        where = f"event {self.event_id}" if self.event_id else "chain head"
        return f"chain {self.chain}, seq {self.seq}: {where}: {self.reason}"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date | uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def normalize_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Changes as the JSON the database will return, so hashing sees exactly what is stored."""
    result: dict[str, Any] = json.loads(json.dumps(changes, default=_json_default))
    return result


def event_hash(key: bytes, content: EventContent, *, chain: int, seq: int, prev_hash: str) -> str:
    """The HMAC-SHA256 of an event in its place."""
    payload = [
        chain,
        seq,
        prev_hash,
        str(content.id),
        content.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        str(content.actor_user_id) if content.actor_user_id else None,
        str(content.actor_org_id) if content.actor_org_id else None,
        content.action,
        content.entity_type,
        content.entity_id,
        content.request_id,
        content.changes,
    ]
    message = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def link(
    keys: AuditKeys, contents: Iterable[EventContent], *, chain: int, seq: int, head: str
) -> list[Link]:
    """Place events after (seq, head) in a chain, sealed with the active key."""
    links = []
    for content in contents:
        seq += 1
        digest = event_hash(keys.active, content, chain=chain, seq=seq, prev_hash=head)
        links.append(
            Link(
                content=content,
                chain=chain,
                seq=seq,
                prev_hash=head,
                hash=digest,
                key_id=keys.active_id,
                key_fingerprint=keys.fingerprints[keys.active_id],
            )
        )
        head = digest
    return links


def verify_chain(
    keys: AuditKeys, chain: int, links: Iterable[Link], *, head_seq: int, head_hash: str
) -> Break | None:
    """The first break in one chain's events (ordered by seq), or None when it verifies."""
    expected_seq, expected_prev, last_id = 1, GENESIS_HASH, None
    for item in links:
        cid = item.content.id
        if item.seq != expected_seq:
            reason = f"expected seq {expected_seq}, found {item.seq}: events were deleted or moved"
            return Break(chain, item.seq, cid, reason)
        if item.prev_hash != expected_prev:
            return Break(
                chain, item.seq, cid, "previous-hash link broken: an event was removed or reordered"
            )
        key = keys.keys.get(item.key_id)
        if key is None:
            return Break(
                chain,
                item.seq,
                cid,
                f"sealed with audit key {item.key_id!r}, which is not configured",
            )
        configured = keys.fingerprints[item.key_id]
        sealed_with = item.key_fingerprint
        if not hmac.compare_digest(
            event_hash(key, item.content, chain=chain, seq=item.seq, prev_hash=item.prev_hash),
            item.hash,
        ):
            if sealed_with is not None and sealed_with != configured:
                reason = (
                    f"these events were sealed with key {item.key_id} of fingerprint"
                    f" {sealed_with}; the configured key has fingerprint {configured}"
                )
                return Break(chain, item.seq, cid, reason, key_mismatch=True)
            reason = "content does not match its hash: the event was altered"
            if sealed_with is None:
                reason += (
                    f" (or sealed with another key {item.key_id!r} than the configured one:"
                    " the event predates key fingerprints)"
                )
            return Break(chain, item.seq, cid, reason)
        if sealed_with is not None and sealed_with != configured:
            reason = "key fingerprint does not match its key: the event was altered"
            return Break(chain, item.seq, cid, reason)
        expected_seq, expected_prev, last_id = item.seq + 1, item.hash, cid
    if head_seq != expected_seq - 1 or head_hash != expected_prev:
        reason = (
            f"head records seq {head_seq} but the chain ends at seq {expected_seq - 1}"
            f" (last event {last_id}): events at the end were deleted or the head was altered"
        )
        return Break(chain, expected_seq, None, reason)
    return None


def change_set(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """Field-level changes: from and to, for the fields whose values differ."""
    before, after = before or {}, after or {}
    changes: dict[str, Any] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if name not in before:
            changes[name] = {"to": new}
        else:
            changes[name] = {"from": old, "to": new}
    return normalize_changes(changes)
