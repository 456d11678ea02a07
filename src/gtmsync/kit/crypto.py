"""Secrets at rest (OAuth token caches, client secrets) are Fernet-encrypted.

The Fernet key is derived from the settings secret with HKDF, under a purpose label, so the
same secret can sign cookies and encrypt tokens without the two uses sharing key material.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["DecryptionError", "SecretBox", "hash_token", "tokens_equal"]


class DecryptionError(Exception):
    """The ciphertext was not made with this key (secret key changed?) or was tampered with."""


def _derive(secret: str, purpose: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"gtmsync", info=purpose.encode())
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


class SecretBox:
    """Encrypt and decrypt small secrets with a key derived from the hub's secret."""

    def __init__(self, secret: str, purpose: str = "secrets-at-rest") -> None:
        self._fernet = Fernet(_derive(secret, purpose))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionError("stored secret cannot be decrypted with the current key") from exc


def hash_token(token: str) -> str:
    """API tokens are stored as SHA-256: they are long random strings, so no slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
