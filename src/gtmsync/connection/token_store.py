"""MSAL token caches are encrypted before they touch the database, and only here.

A purpose-specific key (HKDF label) keeps token encryption apart from cookie signing even
though both derive from the one hub secret.
"""

from __future__ import annotations

from gtmsync.kit.crypto import SecretBox
from gtmsync.settings import Settings

PURPOSE = "dynamics-token-cache"


def box(settings: Settings) -> SecretBox:
    return SecretBox(settings.resolved_secret_key(), purpose=PURPOSE)


def seal(settings: Settings, cache_state: str) -> str:
    return box(settings).encrypt(cache_state)


def unseal(settings: Settings, sealed: str) -> str:
    return box(settings).decrypt(sealed)
