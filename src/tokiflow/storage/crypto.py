"""Encryption at rest: the data folder's secret key and AES-GCM sealing of small blobs.

The key is 32 random bytes in `<data dir>/secret.key` (mode 0600), created on first start,
unless the operator gives one (`secret_key` setting, usually via TOKIFLOW_SECRET_KEY_FILE, as
64 hex characters or 44 base64 characters). A sealed blob is version byte + 12-byte nonce +
ciphertext with its tag, bound to a purpose string so that a blob cannot be moved between uses.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "secret.key"
_VERSION = b"\x01"


class CryptoError(ValueError):
    """A key that cannot be used, or a sealed blob that is damaged or was tampered with."""


def _parse_key(text: str) -> bytes:
    text = text.strip()
    try:
        if len(text) == 64:
            key = bytes.fromhex(text)
        else:
            key = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise CryptoError("secret key must be 64 hex or 44 base64 characters (32 bytes)") from None
    if len(key) != 32:
        raise CryptoError("secret key must be 32 bytes (64 hex or 44 base64 characters)")
    return key


def load_or_create_key(data_dir: Path, given: str = "") -> bytes:
    """The operator's key if given, else the data folder's key file, created 0600 if missing."""
    if given:
        return _parse_key(given)
    path = data_dir / KEY_FILE
    if path.exists():
        return _parse_key(path.read_text())
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return key


class Sealer:
    """AES-GCM with one key; `purpose` is authenticated with every blob."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, data: bytes, purpose: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, data, purpose.encode())

    def open(self, blob: bytes, purpose: str) -> bytes:
        if len(blob) < 1 + 12 + 16 or blob[:1] != _VERSION:
            raise CryptoError("sealed data is damaged (bad header)")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], purpose.encode())
        except InvalidTag:
            raise CryptoError("sealed data was tampered with or the key is wrong") from None
