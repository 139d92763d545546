"""Releases: the signature, and every check a published model must pass."""

import hashlib
import json

import pytest

from botscore.errors import ModelError
from botscore.model.features import CATALOG
from botscore.model.releases import Release, release_id, signature_of
from botscore.settings import Secret
from tests.unit.model.release_fakes import model_variant, repickled

KEY = Secret("k" * 32)


@pytest.fixture
def release(small_model_dir) -> Release:
    return Release.from_directory(small_model_dir)


def test_a_release_holds_the_directory_bytes(small_model_dir, release):
    manifest = json.loads((small_model_dir / "manifest.json").read_text())
    assert release.manifest_json == (small_model_dir / "manifest.json").read_bytes()
    assert release.pickled == (small_model_dir / manifest["artifact"]).read_bytes()
    assert release.id == f"{manifest['name']}/{manifest['version']}"
    assert release_id(release.manifest) == release.id
    assert release.signature == ""


def test_a_missing_artifact_is_refused(small_model_dir, tmp_path):
    variant = model_variant(small_model_dir, tmp_path / "m", artifact="gone.pkl")
    with pytest.raises(ModelError, match=r"gone\.pkl not found"):
        Release.from_directory(variant)


def test_the_signature_covers_every_byte_and_the_key():
    base = signature_of(b'{"a": 1}', b"pickle", KEY)
    assert len(base) == 64
    assert signature_of(b'{"a": 1}', b"pickle", KEY) == base
    assert signature_of(b'{"a": 2}', b"pickle", KEY) != base
    assert signature_of(b'{"a": 1}', b"pickld", KEY) != base
    assert signature_of(b'{"a": 1}', b"pickle", Secret("other")) != base
    # The frame: the same bytes split otherwise between manifest and pickle differ.
    assert signature_of(b'{"a": 1}p', b"ickle", KEY) != base


def test_signing_needs_a_key(release):
    with pytest.raises(ModelError, match="BOTSCORE_SCORING_MODEL_SIGNING_KEY"):
        release.signed(Secret())


def test_a_verified_release_is_the_model(release):
    model = release.verify(Secret(), CATALOG)
    assert model.manifest == release.manifest
    assert model.manifest.feature_names == CATALOG


def test_with_a_key_only_its_signature_passes(release):
    assert release.signed(KEY).verify(KEY, CATALOG).manifest == release.manifest
    with pytest.raises(ModelError, match="unsigned and a signing key is set"):
        release.verify(KEY, CATALOG)
    with pytest.raises(ModelError, match="signature does not match"):
        release.signed(Secret("another key")).verify(KEY, CATALOG)


def test_a_signature_does_not_survive_a_changed_byte(release):
    signed = release.signed(KEY)
    tampered = Release(
        signed.manifest_json.replace(b'"version"', b'"version" '), signed.pickled, signed.signature
    )
    with pytest.raises(ModelError, match="signature does not match"):
        tampered.verify(KEY, CATALOG)


def test_a_tampered_pickle_is_refused_even_when_signed_after_the_change(release):
    flipped = bytearray(release.pickled)
    flipped[len(flipped) // 2] ^= 0x01
    tampered = Release(release.manifest_json, bytes(flipped)).signed(KEY)
    with pytest.raises(ModelError, match="SHA-256 of release"):
        tampered.verify(KEY, CATALOG)


def test_features_the_stage_does_not_publish_are_refused(small_model_dir, tmp_path):
    variant = model_variant(
        small_model_dir, tmp_path / "m", feature_names=[*CATALOG[:-1], "mouse_entropy"]
    )
    with pytest.raises(ModelError, match="mouse_entropy"):
        Release.from_directory(variant).verify(Secret())


def test_features_in_another_order_than_the_rows_are_refused(small_model_dir, tmp_path):
    reordered = [CATALOG[1], CATALOG[0], *CATALOG[2:]]
    release = Release.from_directory(
        model_variant(small_model_dir, tmp_path / "m", feature_names=reordered)
    )
    with pytest.raises(ModelError, match="other features need a resubmit"):
        release.verify(Secret(), CATALOG)


def test_another_scikit_learn_version_is_refused(small_model_dir, tmp_path):
    variant = model_variant(small_model_dir, tmp_path / "m", sklearn_version="0.24.2")
    with pytest.raises(ModelError, match=r"0\.24\.2"):
        Release.from_directory(variant).verify(Secret(), CATALOG)


@pytest.mark.parametrize("manifest_json", [b"not json", b"[1, 2]", b"\xff", b'{"name": "x"}'])
def test_an_unreadable_manifest_is_refused(release, manifest_json):
    with pytest.raises(ModelError, match="manifest"):
        Release(manifest_json, release.pickled).verify(Secret(), CATALOG)


def test_a_pickle_that_cannot_be_unpickled_is_refused(release):
    junk = b"\x80\x05junk"
    manifest = json.loads(release.manifest_json)
    manifest["sha256"] = hashlib.sha256(junk).hexdigest()
    with pytest.raises(ModelError, match="cannot unpickle"):
        Release(json.dumps(manifest).encode(), junk).verify(Secret(), CATALOG)


@pytest.mark.parametrize("artifact", ["sub", "model.pkl"])
def test_an_artifact_that_is_a_directory_is_refused(small_model_dir, tmp_path, artifact):
    variant = model_variant(small_model_dir, tmp_path / "m", artifact=artifact)
    if artifact == "model.pkl":
        (variant / artifact).unlink()
    (variant / artifact).mkdir()
    with pytest.raises(ModelError, match=rf"cannot read .*/m/{artifact}: Is a directory"):
        Release.from_directory(variant)


@pytest.mark.parametrize("estimator", [{"a": 1}, None, 42])
def test_a_pickle_that_is_no_classifier_never_verifies(small_model_dir, tmp_path, estimator):
    """It would go live, then fail in every classifier's first batch."""
    release = Release.from_directory(repickled(small_model_dir, tmp_path / "m", estimator))
    with pytest.raises(ModelError, match="holds no classifier"):
        release.verify(Secret(), CATALOG)


@pytest.mark.parametrize(
    "change",
    [{"name": "a/b"}, {"version": ""}, {"thresholds": {"challenge": False, "block": True}}],
)
def test_a_published_manifest_gets_the_same_checks(release, change):
    manifest = {**json.loads(release.manifest_json), **change}
    with pytest.raises(ModelError, match="must be"):
        Release(json.dumps(manifest).encode(), release.pickled).verify(Secret(), CATALOG)
