"""Envelope encryption of identifying data, and keyed blind indexes.

Each person has a random 256-bit data key; their identifying data is encrypted with it
(AES-GCM). The data key is stored only wrapped by a master key (AES-GCM), tagged with the
master key's id, so master keys rotate by re-wrapping data keys, and erasing a person means
deleting one data key. Blind indexes are HMACs of normalized values under a separate key:
equal inputs give equal digests, so duplicates are found without storing plaintext.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.core.settings import Settings

_NONCE = 12


class UnknownMasterKey(Exception):
    """A data key is wrapped by a master key this deployment does not have."""


@dataclass(frozen=True)
class WrappedKey:
    master_key_id: str
    blob: bytes  # nonce || ciphertext


class Keyring:
    """The active master key, the retired ones still able to unwrap, and the blind-index key."""

    def __init__(self, settings: Settings) -> None:
        self.active_id = settings.master_key_id
        self._masters = {
            **settings.retired_master_key_map(),
            self.active_id: settings.secret("master_key"),
        }
        for key_id, key in self._masters.items():
            if len(key) != 32:
                raise ValueError(
                    f"master key {key_id!r} must be 32 bytes (base64 of 32 random bytes)"
                )
        self._index_key = settings.secret("blind_index_key")

    @staticmethod
    def new_data_key() -> bytes:
        return AESGCM.generate_key(bit_length=256)

    def wrap(self, data_key: bytes, *, owner: str) -> WrappedKey:
        nonce = os.urandom(_NONCE)
        aad = f"ruta:data-key:{owner}:{self.active_id}".encode()
        blob = nonce + AESGCM(self._masters[self.active_id]).encrypt(nonce, data_key, aad)
        return WrappedKey(master_key_id=self.active_id, blob=blob)

    def unwrap(self, wrapped: WrappedKey, *, owner: str) -> bytes:
        master = self._masters.get(wrapped.master_key_id)
        if master is None:
            raise UnknownMasterKey(wrapped.master_key_id)
        aad = f"ruta:data-key:{owner}:{wrapped.master_key_id}".encode()
        nonce, ciphertext = wrapped.blob[:_NONCE], wrapped.blob[_NONCE:]
        return AESGCM(master).decrypt(nonce, ciphertext, aad)

    def blind_index(self, kind: str, normalized: str) -> str:
        message = f"{kind}:{normalized}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


def seal(data_key: bytes, payload: dict[str, Any], *, owner: str) -> bytes:
    """Encrypt a JSON payload under a data key, bound to its owner."""
    nonce = os.urandom(_NONCE)
    plaintext = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return nonce + AESGCM(data_key).encrypt(nonce, plaintext, f"ruta:payload:{owner}".encode())


def open_sealed(data_key: bytes, blob: bytes, *, owner: str) -> dict[str, Any]:
    """Decrypt what `seal` produced; raises if it was altered or bound to another owner."""
    plaintext = AESGCM(data_key).decrypt(
        blob[:_NONCE], blob[_NONCE:], f"ruta:payload:{owner}".encode()
    )
    result: dict[str, Any] = json.loads(plaintext)
    return result
