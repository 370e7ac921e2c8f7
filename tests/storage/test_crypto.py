from pathlib import Path

import pytest

from tokiflow.storage.crypto import CryptoError, Sealer, load_or_create_key


def test_it_creates_a_private_key_file_once_and_reuses_it(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path)
    assert len(key) == 32
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(tmp_path) == key


def test_it_prefers_the_operators_key(tmp_path: Path) -> None:
    assert load_or_create_key(tmp_path, "ab" * 32) == bytes.fromhex("ab" * 32)
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(CryptoError, match="32 bytes"):
        load_or_create_key(tmp_path, "c2hvcnQ=")


def test_sealed_data_round_trips_and_hides_the_plaintext() -> None:
    sealer = Sealer(b"k" * 32)
    blob = sealer.seal(b"hunter2 webhook secret", "channel")
    assert b"hunter2" not in blob
    assert sealer.open(blob, "channel") == b"hunter2 webhook secret"


@pytest.mark.parametrize("damage", ["flip", "purpose", "key", "truncate"])
def test_tampering_is_detected(damage: str) -> None:
    sealer = Sealer(b"k" * 32)
    blob = sealer.seal(b"payload", "channel")
    purpose = "channel"
    if damage == "flip":
        blob = blob[:-1] + bytes([blob[-1] ^ 1])
    elif damage == "purpose":
        purpose = "output"
    elif damage == "key":
        sealer = Sealer(b"x" * 32)
    else:
        blob = blob[:10]
    with pytest.raises(CryptoError):
        sealer.open(blob, purpose)
