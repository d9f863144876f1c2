"""Secrets at rest: Fernet encryption under a key derived from the server secret.

Each use gets its own key (HKDF with a purpose label), so a leaked webhook secret table cannot
decrypt anything else, and the server secret itself never touches the data. Provider keys
(BYOK) can reuse :class:`SecretBox` with their own purpose.

Changing ``MEDIAGATE_SECRET_KEY`` makes every stored secret unreadable; rotate the webhook
secrets afterwards.
"""

from __future__ import annotations

import base64
import secrets as random_bytes

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mediagate.config import Settings

WEBHOOK_PURPOSE = "webhook-signing-secret"
SECRET_PREFIX = "whsec_"
_SALT = b"mediagate-secret-box-v1"


class SecretUnreadable(Exception):
    """A stored secret does not decrypt: the server secret changed or the value is corrupt."""


class SecretBox:
    """Encrypts short secrets for one purpose.

    >>> box = SecretBox(b"server secret", "example")
    >>> box.decrypt(box.encrypt("hello"))
    'hello'
    """

    def __init__(self, signing_key: bytes, purpose: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose.encode()).derive(
            signing_key
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "stored secret cannot be decrypted with this server secret"
            ) from None


def encrypt(settings: Settings, text: str) -> str:
    """Encrypt a webhook signing secret for storage."""
    return SecretBox(settings.signing_key, WEBHOOK_PURPOSE).encrypt(text)


def decrypt(settings: Settings, token: str) -> str:
    """Decrypt a stored webhook signing secret."""
    return SecretBox(settings.signing_key, WEBHOOK_PURPOSE).decrypt(token)


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(random_bytes.token_bytes(32)).decode()
