from __future__ import annotations

import pytest

from gtmsync.kit.crypto import DecryptionError, SecretBox, hash_token


class TestSecretBox:
    def test_round_trip_and_ciphertext_hides_plaintext(self) -> None:
        box = SecretBox("k" * 40)
        secret = "refresh-token-value-123"
        sealed = box.encrypt(secret)
        assert secret not in sealed
        assert box.decrypt(sealed) == secret

    def test_other_key_or_purpose_cannot_decrypt(self) -> None:
        sealed = SecretBox("k" * 40).encrypt("x")
        with pytest.raises(DecryptionError):
            SecretBox("j" * 40).decrypt(sealed)
        with pytest.raises(DecryptionError):
            SecretBox("k" * 40, purpose="other").decrypt(sealed)

    def test_hash_token_is_stable_and_not_the_token(self) -> None:
        assert hash_token("abc") == hash_token("abc")
        assert hash_token("abc") != "abc"
        assert len(hash_token("abc")) == 64
