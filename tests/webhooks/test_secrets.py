"""Secrets at rest and the Standard Webhooks secret format."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from mediagate.config import Settings
from mediagate.webhooks import secrets
from mediagate.webhooks.secrets import SecretBox, SecretUnreadable


def test_a_secret_round_trips_and_is_not_stored_in_clear() -> None:
    settings = Settings(secret_key="s" * 40)
    secret = secrets.new_signing_secret()
    token = secrets.encrypt(settings, secret)
    assert secret not in token and secret.removeprefix("whsec_") not in token
    assert secrets.decrypt(settings, token) == secret


def test_each_purpose_and_server_secret_has_its_own_key() -> None:
    token = SecretBox(b"server", "webhooks").encrypt("x")
    with pytest.raises(SecretUnreadable):
        SecretBox(b"server", "provider-keys").decrypt(token)
    with pytest.raises(SecretUnreadable):
        SecretBox(b"another server", "webhooks").decrypt(token)


def test_new_secrets_follow_the_standard_webhooks_format() -> None:
    secret = secrets.new_signing_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != secrets.new_signing_secret()
    now = datetime.now(UTC)
    signature = Webhook(secret).sign("msg_1", now, '{"a":1}')
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    assert Webhook(secret).verify('{"a":1}', headers) == {"a": 1}
