"""Credentials encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256), several keys.

`CREDENTIALS_ENCRYPTION_KEYS` lists Fernet keys, newest first: the first encrypts, every key
decrypts (MultiFernet), so a new key can be put in front without breaking stored rows, and
`relais accounts rotate-keys` then re-encrypts every row with it before the old key is dropped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app

log = logging.getLogger(__name__)

_EXTENSION = "relais_credentials_cipher"


class CredentialsUnreadable(Exception):
    """The stored credentials were encrypted with a key this process does not have."""


class CredentialsCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        try:
            self._fernets = [Fernet(key.encode() if isinstance(key, str) else key) for key in keys]
        except (ValueError, TypeError) as exc:
            # Never echo the key itself.
            raise ValueError(
                "CREDENTIALS_ENCRYPTION_KEYS holds a value that is not a Fernet key "
                "(32 url-safe base64-encoded bytes; make one with `python -c 'from "
                "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
            ) from exc
        self._multi = MultiFernet(self._fernets)

    def encrypt(self, payload: dict[str, Any]) -> bytes:
        return self._multi.encrypt(json.dumps(payload, separators=(",", ":")).encode())

    def decrypt(self, token: bytes) -> dict[str, Any]:
        try:
            return json.loads(self._multi.decrypt(bytes(token)))
        except InvalidToken as exc:
            raise CredentialsUnreadable("no configured key decrypts these credentials") from exc

    def rotate(self, token: bytes) -> bytes:
        """The same plaintext, encrypted with the newest key."""
        try:
            return self._multi.rotate(bytes(token))
        except InvalidToken as exc:
            raise CredentialsUnreadable("no configured key decrypts these credentials") from exc

    def is_current(self, token: bytes) -> bool:
        try:
            self._fernets[0].decrypt(bytes(token))
        except InvalidToken:
            return False
        return True


def _development_key(secret_key: str) -> str:
    """Outside production, a key derived from SECRET_KEY keeps `make run` zero-configuration."""
    digest = hashlib.sha256(b"relais-credentials:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def init_app(app: Flask) -> None:
    keys = list(app.config.get("CREDENTIALS_ENCRYPTION_KEYS") or [])
    if not keys:
        if app.config.get("ENV") == "production":
            raise RuntimeError(
                "RELAIS_ENV=production needs CREDENTIALS_ENCRYPTION_KEYS (comma-separated Fernet "
                "keys, newest first; make one with `python -c 'from cryptography.fernet import "
                "Fernet; print(Fernet.generate_key().decode())'`)."
            )
        keys = [_development_key(app.config.get("SECRET_KEY") or "")]
    app.extensions[_EXTENSION] = CredentialsCipher(keys)


def cipher() -> CredentialsCipher:
    return current_app.extensions[_EXTENSION]


def encrypt(payload: dict[str, Any]) -> bytes:
    return cipher().encrypt(payload)


def decrypt(token: bytes) -> dict[str, Any]:
    return cipher().decrypt(token)
