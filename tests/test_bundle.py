"""Bundles are checked before use: a tampered, incomplete or foreign bundle is refused with a clear error."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import soundsentry
from soundsentry import ModelError, ModelIntegrityError, ModelNotFoundError
from soundsentry.bundle import file_sha256, list_shipped_models, read_bundle

from .conftest import LOGMEL_BUNDLE, MONO_CLIP, requires

#: The two encoder kinds' bundles: the log-mel fixture (lof, ocsvm, knn, mahalanobis) and the shipped
#: EdgeL3 views fan (one ``views`` detector and the EdgeL3 licence file).
SOURCES = {"logmel": LOGMEL_BUNDLE, "views": soundsentry.bundle.read_bundle("fan").root}


def _copy(tmp_path, kind):
    dest = tmp_path / "fan_copy"
    shutil.copytree(SOURCES[kind], dest)
    return dest


@pytest.fixture
def bundle(tmp_path):
    """A private copy of the log-mel fixture bundle to tamper with (its lof, ocsvm and log-mel card sections)."""
    return _copy(tmp_path, "logmel")


@pytest.fixture
def views_bundle(tmp_path):
    """A private copy of the shipped EdgeL3 views fan bundle to tamper with."""
    return _copy(tmp_path, "views")


@pytest.fixture(params=sorted(SOURCES))
def any_bundle(request, tmp_path):
    """A private copy of either kind's bundle: checks that do not depend on the encoder kind."""
    return _copy(tmp_path, request.param)


def _card(bundle):
    return json.loads((bundle / "model.json").read_text(encoding="utf-8"))


def _write_card(bundle, card):
    (bundle / "model.json").write_text(json.dumps(card), encoding="utf-8")


def _rechecksum(bundle, name):
    card = _card(bundle)
    card["files"][name] = file_sha256(bundle / name)
    _write_card(bundle, card)


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_untouched_copy_loads_and_scores_like_the_original(tmp_path, kind):
    copy = soundsentry.load_model(_copy(tmp_path, kind))
    original = soundsentry.load_model(SOURCES[kind])
    a, b = copy.score(MONO_CLIP), original.score(MONO_CLIP)
    np.testing.assert_array_equal(a.window_scores, b.window_scores)
    assert a.score == b.score


@pytest.mark.parametrize("name", [*list_shipped_models(), "fixture:fan-logmel"])
def test_card_checksums_match(name):
    root = LOGMEL_BUNDLE if name.startswith("fixture:") else read_bundle(name).root
    card = _card(root)
    if name.startswith("fixture:"):
        assert set(card["files"]) >= {"encoder.onnx", "ocsvm.onnx", "lof.npz"}
    else:
        assert set(card["files"]) >= {"encoder.onnx", "views.npz", "EDGEL3_LICENSE.txt"}
    for file, digest in card["files"].items():
        assert file_sha256(root / file) == digest


def test_changed_byte_in_encoder_is_a_checksum_error(any_bundle):
    bundle = any_bundle
    path = bundle / "encoder.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="checksum") as info:
        soundsentry.load_model(bundle)
    assert "encoder.onnx" in str(info.value)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("logmel", "lof.npz"),
        ("logmel", "ocsvm.onnx"),
        ("logmel", "encoder.onnx"),
        ("views", "views.npz"),
        ("views", "encoder.onnx"),
        ("views", "EDGEL3_LICENSE.txt"),
    ],
)
def test_deleted_file_is_reported_missing(tmp_path, kind, name):
    bundle = _copy(tmp_path, kind)
    (bundle / name).unlink()
    with pytest.raises(ModelIntegrityError, match="missing") as info:
        soundsentry.load_model(bundle)
    assert name in str(info.value)


def test_unknown_format_version_is_refused(any_bundle):
    bundle = any_bundle
    card = _card(bundle)
    card["format_version"] = 99
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match="version") as info:
        soundsentry.load_model(bundle)
    assert "99" in str(info.value)


@pytest.mark.parametrize("bad_path", ["../x", "../fan_copy/../x", "sub/../../x", "/etc/passwd", ""])
def test_card_path_outside_the_bundle_is_refused(any_bundle, bad_path):
    bundle = any_bundle
    (bundle.parent / "x").write_bytes(b"outside")
    card = _card(bundle)
    card["files"][bad_path] = file_sha256(bundle.parent / "x")
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match="path"):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize(("kind", "detector"), [("logmel", "lof"), ("views", "views")])
def test_detector_pointing_outside_the_bundle_is_refused(tmp_path, kind, detector):
    bundle = _copy(tmp_path, kind)
    (bundle.parent / "x").write_bytes(b"outside")
    card = _card(bundle)
    card["detectors"][detector]["file"] = "../x"
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[1, 2, 3]", b'"fan"', b"\xff\xfe\x00garbage"],
    ids=["broken", "empty", "list", "string", "not-utf8"],
)
def test_invalid_card_is_refused(any_bundle, content):
    bundle = any_bundle
    (bundle / "model.json").write_bytes(content)
    with pytest.raises(ModelIntegrityError, match=r"model\.json"):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("logmel", "features"),
        ("logmel", "normalization"),
        *((kind, key) for kind in sorted(SOURCES) for key in ("files", "detectors", "encoder")),
    ],
)
def test_card_missing_a_section_is_refused(tmp_path, kind, key):
    bundle = _copy(tmp_path, kind)
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
def test_card_section_of_wrong_type_is_refused(any_bundle, key, value):
    bundle = any_bundle
    card = _card(bundle)
    card[key] = value
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match=key):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize(("kind", "name"), [("logmel", "ocsvm.onnx"), ("views", "views.npz")])
def test_file_used_without_checksum_is_refused(tmp_path, kind, name):
    bundle = _copy(tmp_path, kind)
    card = _card(bundle)
    del card["files"][name]
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match=re.escape(name)):
        soundsentry.load_model(bundle)


def test_normalisation_of_wrong_size_is_refused(bundle):
    card = _card(bundle)
    card["normalization"]["mean"] = card["normalization"]["mean"][:-1]
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match="mels"):
        soundsentry.load_model(bundle)


@requires("onnx")
def test_encoder_with_other_interface_is_refused(any_bundle):
    bundle = any_bundle
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


def test_encoder_that_is_not_onnx_is_refused(any_bundle):
    bundle = any_bundle
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


def test_pickled_views_state_is_refused_at_load(views_bundle):
    bundle = views_bundle
    np.savez(bundle / "views.npz", reference=np.array([{"evil": 1}, None], dtype=object))
    _rechecksum(bundle, "views.npz")
    with pytest.raises(ModelIntegrityError, match="pickled"):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize(("kind", "name"), [("logmel", "lof.npz"), ("views", "views.npz")])
def test_verify_false_skips_checksums_only(tmp_path, kind, name):
    bundle = _copy(tmp_path, kind)
    card = _card(bundle)
    card["files"][name] = "0" * 64
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match="checksum"):
        soundsentry.load_model(bundle)
    soundsentry.load_model(bundle, verify=False)
    (bundle / name).unlink()
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
    ("kind", "keys", "value", "message"),
    [
        ("logmel", ("format",), "something-else", "format"),
        ("logmel", ("window", "frames"), 32, "encoder expects windows"),
        ("logmel", ("window", "frames"), 0, r"window\.frames must be an integer from 1"),
        ("logmel", ("window", "hop_frames"), 0, r"window\.hop_frames must be an integer from 1"),
        ("logmel", ("default_detector",), "isolation_forest", "default detector"),
        ("views", ("format",), "something-else", "format"),
        ("views", ("default_detector",), "isolation_forest", "default detector"),
        ("views", ("encoder", "kind"), "edgel4-views", "unknown encoder kind 'edgel4-views'"),
        ("views", ("encoder", "embedding_dim"), 0, r"encoder\.embedding_dim must be an integer"),
        ("views", ("encoder", "embedding_dim"), 64, r"gives 128 values.*embedding_dim = 64"),
    ],
)
def test_card_field_that_cannot_work_is_refused_at_load(tmp_path, kind, keys, value, message):
    bundle = _copy(tmp_path, kind)
    card = _card(bundle)
    section = card
    for key in keys[:-1]:
        section = section[key]
    section[keys[-1]] = value
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match=message):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize("name", list_shipped_models())
def test_shipped_card_is_readable_by_everyone(name):
    root = read_bundle(name).root
    for path in [root / "model.json", *(root / f for f in _card(root)["files"])]:
        assert path.stat().st_mode & 0o044 == 0o044, path
