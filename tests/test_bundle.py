"""Bundles are checked before use: a tampered, incomplete or foreign bundle is refused with a clear error."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundsentry
from soundsentry import ModelError, ModelIntegrityError, ModelNotFoundError
from soundsentry.bundle import file_sha256, list_shipped_models, read_bundle

from .conftest import MONO_CLIP, requires


@pytest.fixture
def bundle(tmp_path, fan_bundle_dir):
    """A private copy of the shipped fan bundle to tamper with."""
    dest = tmp_path / "fan_copy"
    shutil.copytree(fan_bundle_dir, dest)
    return dest


def _card(bundle):
    return json.loads((bundle / "model.json").read_text(encoding="utf-8"))


def _write_card(bundle, card):
    (bundle / "model.json").write_text(json.dumps(card), encoding="utf-8")


def _rechecksum(bundle, name):
    card = _card(bundle)
    card["files"][name] = file_sha256(bundle / name)
    _write_card(bundle, card)


def test_untouched_copy_loads_and_scores_like_the_shipped_model(bundle, fan_model):
    copy = soundsentry.load_model(bundle)
    np.testing.assert_array_equal(copy.score(MONO_CLIP).window_scores, fan_model.score(MONO_CLIP).window_scores)


def test_shipped_card_checksums_match(fan_bundle_dir):
    card = _card(fan_bundle_dir)
    assert set(card["files"]) >= {"encoder.onnx", "ocsvm.onnx", "lof.npz"}
    for name, digest in card["files"].items():
        assert file_sha256(fan_bundle_dir / name) == digest


def test_changed_byte_in_encoder_is_a_checksum_error(bundle):
    path = bundle / "encoder.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="checksum") as info:
        soundsentry.load_model(bundle)
    assert "encoder.onnx" in str(info.value)


@pytest.mark.parametrize("name", ["lof.npz", "ocsvm.onnx", "encoder.onnx"])
def test_deleted_file_is_reported_missing(bundle, name):
    (bundle / name).unlink()
    with pytest.raises(ModelIntegrityError, match="missing") as info:
        soundsentry.load_model(bundle)
    assert name in str(info.value)


def test_unknown_format_version_is_refused(bundle):
    card = _card(bundle)
    card["format_version"] = 99
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match="version") as info:
        soundsentry.load_model(bundle)
    assert "99" in str(info.value)


@pytest.mark.parametrize("bad_path", ["../x", "../fan_copy/../x", "sub/../../x", "/etc/passwd", ""])
def test_card_path_outside_the_bundle_is_refused(bundle, bad_path):
    (bundle.parent / "x").write_bytes(b"outside")
    card = _card(bundle)
    card["files"][bad_path] = file_sha256(bundle.parent / "x")
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match="path"):
        soundsentry.load_model(bundle)


def test_detector_pointing_outside_the_bundle_is_refused(bundle):
    (bundle.parent / "x").write_bytes(b"outside")
    card = _card(bundle)
    card["detectors"]["lof"]["file"] = "../x"
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[1, 2, 3]", b'"fan"', b"\xff\xfe\x00garbage"],
    ids=["broken", "empty", "list", "string", "not-utf8"],
)
def test_invalid_card_is_refused(bundle, content):
    (bundle / "model.json").write_bytes(content)
    with pytest.raises(ModelIntegrityError, match=r"model\.json"):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize("key", ["features", "normalization", "files", "detectors", "encoder"])
def test_card_missing_a_section_is_refused(bundle, key):
    card = _card(bundle)
    del card[key]
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match=key):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize(
    ("key", "value"),
    [("encoder", "encoder.onnx"), ("detectors", ["lof"]), ("detectors", {}), ("detectors", {"lof": "lof.npz"})],
    ids=["encoder-string", "detectors-list", "detectors-empty", "detector-string"],
)
def test_card_section_of_wrong_type_is_refused(bundle, key, value):
    card = _card(bundle)
    card[key] = value
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match=key):
        soundsentry.load_model(bundle)


def test_file_used_without_checksum_is_refused(bundle):
    card = _card(bundle)
    del card["files"]["ocsvm.onnx"]
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match=r"ocsvm\.onnx"):
        soundsentry.load_model(bundle)


def test_normalisation_of_wrong_size_is_refused(bundle):
    card = _card(bundle)
    card["normalization"]["mean"] = card["normalization"]["mean"][:-1]
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match="mels"):
        soundsentry.load_model(bundle)


@requires("onnx")
def test_encoder_with_other_interface_is_refused(bundle):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["latent"])],
        "not_an_encoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 128, 64])],
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, [None, 128, 64])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    onnx.save(proto, bundle / "encoder.onnx")
    _rechecksum(bundle, "encoder.onnx")
    read_bundle(bundle)  # the card itself is consistent: only the graph's interface is wrong
    with pytest.raises(ModelIntegrityError, match="interface") as info:
        soundsentry.load_model(bundle)
    assert "'x'" in str(info.value) and "logmel" in str(info.value)


def test_encoder_that_is_not_onnx_is_refused(bundle):
    (bundle / "encoder.onnx").write_bytes(b"\x00" * 100)
    _rechecksum(bundle, "encoder.onnx")
    with pytest.raises(ModelIntegrityError, match=r"encoder\.onnx"):
        soundsentry.load_model(bundle)


def test_pickled_lof_state_is_refused_at_load(bundle):
    # Refused when the bundle is read (the .npy headers are checked), before any array is loaded.
    np.savez(bundle / "lof.npz", reference=np.array([{"evil": 1}, None], dtype=object), n_neighbors=np.int64(1))
    _rechecksum(bundle, "lof.npz")
    with pytest.raises(ModelIntegrityError, match="pickled"):
        soundsentry.load_model(bundle)


def test_verify_false_skips_checksums_only(bundle):
    card = _card(bundle)
    card["files"]["lof.npz"] = "0" * 64
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match="checksum"):
        soundsentry.load_model(bundle)
    soundsentry.load_model(bundle, verify=False)
    (bundle / "lof.npz").unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        soundsentry.load_model(bundle, verify=False)


@pytest.mark.parametrize("name", ["no_such_model", "fan2", "models/fan_missing"])
def test_unknown_model_name(name):
    with pytest.raises(ModelNotFoundError) as info:
        soundsentry.load_model(name)
    assert name in str(info.value)
    assert "fan" in str(info.value)  # lists what is shipped
    assert isinstance(info.value, ModelError)


def test_folder_without_card_is_not_a_model(tmp_path):
    with pytest.raises(ModelNotFoundError):
        soundsentry.load_model(tmp_path)


def test_list_shipped_models():
    assert "fan" in list_shipped_models()
    assert "fan" in soundsentry.list_shipped_models()
    assert list_shipped_models() == sorted(list_shipped_models())


@pytest.mark.parametrize(
    ("keys", "value", "message"),
    [
        (("format",), "something-else", "format"),
        (("window", "frames"), 32, "encoder expects windows"),
        (("window", "frames"), 0, r"window\.frames must be an integer from 1"),
        (("window", "hop_frames"), 0, r"window\.hop_frames must be an integer from 1"),
        (("default_detector",), "isolation_forest", "default detector"),
    ],
)
def test_card_field_that_cannot_work_is_refused_at_load(bundle, keys, value, message):
    card = _card(bundle)
    section = card
    for key in keys[:-1]:
        section = section[key]
    section[keys[-1]] = value
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match=message):
        soundsentry.load_model(bundle)


def test_shipped_card_is_readable_by_everyone(fan_bundle_dir):
    assert (fan_bundle_dir / "model.json").stat().st_mode & 0o044 == 0o044
