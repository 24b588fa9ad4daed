"""The audit chain's hashing, verification and change sets: pure, no I/O.

Events are spread over a fixed number of chains so that concurrent writers need not queue
behind one another. Each event's hash is an HMAC over its content, its place in its chain
(chain, seq) and the previous event's hash; without the audit key nobody can recompute a
chain they altered, so an UPDATE, a DELETE or a reordering made in the database shows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

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


# Checkpoints: the chains' heads signed with an Ed25519 key and kept outside the database.
# A hash chain shows an altered or removed event only if a later event still links to it;
# deleting the newest events (and setting the head back) leaves a shorter chain that
# verifies. A checkpoint kept elsewhere remembers how far every chain reached.

CHECKPOINT_FORMAT = "ruta-audit-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or whose signature does not verify."""


@dataclass(frozen=True)
class Head:
    """How far one chain reached: its last event's seq and hash (seq 0: still empty)."""

    chain: int
    seq: int
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    """Signed heads of every chain, at one moment."""

    created_at: datetime
    key_id: str
    public_key_fingerprint: str
    heads: tuple[Head, ...]
    signature: str

    def signed_content(self) -> dict[str, Any]:
        """Everything the signature covers."""
        return {
            "format": CHECKPOINT_FORMAT,
            "created_at": self.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "key_id": self.key_id,
            "public_key_fingerprint": self.public_key_fingerprint,
            "heads": [{"chain": h.chain, "seq": h.seq, "hash": h.hash} for h in self.heads],
        }

    def to_json(self) -> str:
        """The checkpoint as the file written outside the database."""
        document = {**self.signed_content(), "signature": self.signature}
        return json.dumps(document, indent=2, sort_keys=True) + "\n"


def canonical_encoding(content: Mapping[str, Any]) -> bytes:
    """The exact bytes signed: JSON with sorted keys, no spaces, ASCII only."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def public_key_fingerprint(public_key: bytes) -> str:
    """A short name of a public key: its SHA-256, to compare against one stored elsewhere."""
    return "sha256:" + hashlib.sha256(public_key).hexdigest()


def public_key_of(private_key: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key of a raw 32-byte private key."""
    key = Ed25519PrivateKey.from_private_bytes(private_key)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign_checkpoint(
    private_key: bytes, *, key_id: str, heads: Iterable[Head], created_at: datetime
) -> Checkpoint:
    """Sign the heads of every chain."""
    unsigned = Checkpoint(
        created_at=created_at,
        key_id=key_id,
        public_key_fingerprint=public_key_fingerprint(public_key_of(private_key)),
        heads=tuple(sorted(heads, key=lambda h: h.chain)),
        signature="",
    )
    key = Ed25519PrivateKey.from_private_bytes(private_key)
    signature = key.sign(canonical_encoding(unsigned.signed_content()))
    return replace(unsigned, signature=base64.b64encode(signature).decode())


def _field(document: Mapping[str, Any], name: str, kind: type) -> Any:
    value = document.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CheckpointError(f"the checkpoint's {name!r} is missing or not a {kind.__name__}")
    return value


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint file read back (its signature not yet checked); CheckpointError if it
    is not one."""
    try:
        document = json.loads(text)
    except ValueError:
        raise CheckpointError("the checkpoint is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"the checkpoint is not of the format {CHECKPOINT_FORMAT}")
    heads = []
    for item in _field(document, "heads", list):
        if not isinstance(item, dict):
            raise CheckpointError("a head of the checkpoint is not an object")
        heads.append(
            Head(
                chain=_field(item, "chain", int),
                seq=_field(item, "seq", int),
                hash=_field(item, "hash", str),
            )
        )
    try:
        created_at = datetime.fromisoformat(_field(document, "created_at", str))
    except ValueError:
        raise CheckpointError("the checkpoint's 'created_at' is not a date-time") from None
    return Checkpoint(
        created_at=created_at,
        key_id=_field(document, "key_id", str),
        public_key_fingerprint=_field(document, "public_key_fingerprint", str),
        heads=tuple(heads),
        signature=_field(document, "signature", str),
    )


def verify_signature(checkpoint: Checkpoint, public_key: bytes) -> None:
    """Raise CheckpointError unless the checkpoint was signed by the key's private half and
    not changed since."""
    fingerprint = public_key_fingerprint(public_key)
    if checkpoint.public_key_fingerprint != fingerprint:
        raise CheckpointError(
            f"signed by key {checkpoint.key_id} of fingerprint"
            f" {checkpoint.public_key_fingerprint}; the verifying key has fingerprint"
            f" {fingerprint}"
        )
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, canonical_encoding(checkpoint.signed_content())
        )
    except (ValueError, InvalidSignature):
        raise CheckpointError(
            "the signature does not verify: the checkpoint was altered or forged"
        ) from None


def missing_heads(
    checkpoint: Checkpoint, found: Mapping[tuple[int, int], str], current: Mapping[int, int]
) -> Break | None:
    """The first head of the checkpoint the database no longer holds as it was.

    `found` maps (chain, seq) to the hash of the event there now, for the checkpoint's
    heads; `current` maps each chain to the seq of its last event now.
    """
    for head in checkpoint.heads:
        if head.seq == 0:
            continue
        now = found.get((head.chain, head.seq))
        if now is None:
            reason = (
                f"the checkpoint's head (seq {head.seq}) is missing; the chain now ends at seq"
                f" {current.get(head.chain, 0)}: events were deleted"
            )
            return Break(head.chain, head.seq, None, reason)
        if not hmac.compare_digest(now, head.hash):
            reason = "the event at the checkpoint's head has another hash: the chain was rewritten"
            return Break(head.chain, head.seq, None, reason)
    return None
