"""Model bundles are untrusted input: a tampered copy of a real bundle is refused
with a clear error, and nothing in it reaches ONNX Runtime or ``np.load`` first.

Each test copies a real bundle (the log-mel fixture with its lof and ocsvm files, or the shipped
EdgeL3 views ``fan`` with its views.npz), breaks it in one way, re-signs the changed file in
the card (an attacker can always do that: checksums prove integrity, not trust), and
checks the refusal. tests/test_bundle.py covers plain checksum, missing-file and
card-structure errors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import soundsentry
import soundsentry.untrusted
from soundsentry import ModelIntegrityError
from soundsentry.bundle import file_sha256

from .conftest import LOGMEL_BUNDLE, MONO_CLIP, REPO_ROOT, requires


@pytest.fixture
def bundle(tmp_path):
    """A copy of the log-mel fixture bundle (lof.npz, ocsvm.onnx, log-mel card sections)."""
    dest = tmp_path / "fan_copy"
    shutil.copytree(LOGMEL_BUNDLE, dest)
    return dest


@pytest.fixture
def views_bundle(tmp_path, fan_bundle_dir):
    """A copy of the shipped EdgeL3 views fan bundle (views.npz, EDGEL3_LICENSE.txt)."""
    dest = tmp_path / "fan_copy"
    shutil.copytree(fan_bundle_dir, dest)
    return dest


@pytest.fixture
def no_onnx_runtime(monkeypatch):
    """Fail the test if anything opens an ONNX Runtime session: refusals come first."""
    import soundsentry.onnx_session

    def forbidden(*args, **kwargs):
        raise AssertionError("an ONNX Runtime session was opened for a refused file")

    monkeypatch.setattr(soundsentry.onnx_session.ort, "InferenceSession", forbidden)


@pytest.fixture
def no_np_load(monkeypatch):
    """Fail the test if the LOF state is loaded with np.load: the .npz checks come first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("np.load ran on a refused file")

    monkeypatch.setattr(np, "load", forbidden)


def _card(bundle):
    return json.loads((bundle / "model.json").read_text(encoding="utf-8"))


def _write_card(bundle, card):
    (bundle / "model.json").write_text(json.dumps(card), encoding="utf-8")


def _resign(bundle, name):
    card = _card(bundle)
    card["files"][name] = file_sha256(bundle / name)
    _write_card(bundle, card)


def _cli_refuses(bundle, *words):
    """The CLI exits 4 naming the problem, with no traceback, and prints no rows."""
    proc = subprocess.run(
        [sys.executable, "-m", "soundsentry", "score", str(MONO_CLIP), "--model", str(bundle), "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr
    assert proc.stdout == ""


# -- .npz ------------------------------------------------------------------------------------


def _zip_bomb(path, *, inflated_bytes):
    """A valid .npy of zeros, deflated: it inflates a thousandfold."""
    n = inflated_bytes // 4
    header = {"descr": "<f4", "fortran_order": False, "shape": (n // 64, 64)}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("reference.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            block = bytes(1 << 20)
            for _ in range(inflated_bytes // len(block)):
                fh.write(block)


def test_zip_bomb_npz_is_refused_before_inflating(bundle, no_np_load):
    _zip_bomb(bundle / "lof.npz", inflated_bytes=64 << 20)
    assert (bundle / "lof.npz").stat().st_size < 1 << 20
    _resign(bundle, "lof.npz")
    with pytest.raises(ModelIntegrityError, match=r"lof\.npz.*inflates .*zip bomb"):
        soundsentry.load_model(bundle)


def test_oversized_npz_is_refused(bundle, monkeypatch, no_np_load):
    # Stored, not compressed, so only the size rule can catch it; the limit is lowered so the
    # test writes 2 MB instead of the 256 MB a real refusal needs.
    monkeypatch.setattr(soundsentry.untrusted, "MAX_NPZ_BYTES", 1 << 20)
    rng = np.random.default_rng(0)
    np.savez(bundle / "lof.npz", reference=rng.standard_normal((8192, 64)).astype(np.float32))
    _resign(bundle, "lof.npz")
    with pytest.raises(ModelIntegrityError, match=r"more than 1048576 bytes unpacked"):
        soundsentry.load_model(bundle)


def test_npy_header_claiming_a_huge_array_is_refused(bundle, no_np_load):
    # np.load would allocate what the header claims (a terabyte) before reading any data.
    with zipfile.ZipFile(bundle / "lof.npz", "w") as archive:
        with archive.open("reference.npy", "w") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (1 << 38,)})
            fh.write(bytes(64))
    _resign(bundle, "lof.npz")
    with pytest.raises(ModelIntegrityError, match="header claims shape"):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize(
    ("member", "message"),
    [("../../escape.npy", "not a plain .npy"), ("reference.pkl", "not a plain .npy")],
)
def test_npz_member_that_is_not_a_plain_array_is_refused(bundle, member, message):
    with zipfile.ZipFile(bundle / "lof.npz", "w") as archive:
        archive.writestr(member, b"\x80\x04N.")  # a pickle of None
    _resign(bundle, "lof.npz")
    with pytest.raises(ModelIntegrityError, match=message):
        soundsentry.load_model(bundle)


def test_npz_that_is_not_a_zip_is_refused(bundle):
    (bundle / "lof.npz").write_bytes(b"\x80\x04\x95" + bytes(100))  # pickle protocol 4 opcodes
    _resign(bundle, "lof.npz")
    with pytest.raises(ModelIntegrityError, match=r"not a valid \.npz"):
        soundsentry.load_model(bundle)
    _cli_refuses(bundle, "lof.npz", "not a valid .npz")


def test_views_zip_bomb_is_refused_before_inflating(views_bundle, no_np_load):
    _zip_bomb(views_bundle / "views.npz", inflated_bytes=64 << 20)
    _resign(views_bundle, "views.npz")
    with pytest.raises(ModelIntegrityError, match=r"views\.npz.*inflates .*zip bomb"):
        soundsentry.load_model(views_bundle)


def test_views_npz_that_is_not_a_zip_is_refused_through_the_cli(views_bundle):
    (views_bundle / "views.npz").write_bytes(b"\x80\x04\x95" + bytes(100))
    _resign(views_bundle, "views.npz")
    _cli_refuses(views_bundle, "views.npz", "not a valid .npz")


def test_inconsistent_views_state_is_refused(views_bundle):
    """Numbers only, so the .npz checks pass; the views detector's own load refuses arrays that do not fit."""
    with np.load(views_bundle / "views.npz", allow_pickle=False) as data:
        state = {k: data[k] for k in data.files}
    state["reference"] = state["reference"][:, :-1]  # one column fewer than the latent rows
    np.savez(views_bundle / "views.npz", **state)
    _resign(views_bundle, "views.npz")
    model = soundsentry.load_model(views_bundle)
    with pytest.raises(ModelIntegrityError, match=r"views\.npz.*inconsistent"):
        model.score(MONO_CLIP)


@pytest.fixture(scope="module")
def enrolled_with_numpy_detectors(tmp_path_factory, fan_model):
    """A real bundle holding knn.npz and mahalanobis.npz: the shipped fan's EdgeL3 views encoder enrolled on
    five slide-rail clips (single-score detectors on a views encoder: the clip score is their windows' mean)."""
    from .test_enroll import SLIDER_NORMAL

    out = tmp_path_factory.mktemp("enrolled") / "slider"
    fan_model.enroll(SLIDER_NORMAL, out=out, detectors=("knn", "mahalanobis"))
    return out


@pytest.fixture
def numpy_detector_bundle(tmp_path, enrolled_with_numpy_detectors):
    dest = tmp_path / "slider_copy"
    shutil.copytree(enrolled_with_numpy_detectors, dest)
    return dest


@pytest.mark.parametrize("name", ["knn.npz", "mahalanobis.npz"])
def test_pickled_knn_or_mahalanobis_npz_is_refused_before_np_load(numpy_detector_bundle, name, no_np_load):
    bundle = numpy_detector_bundle
    evil = np.array([{"evil": 1}, None], dtype=object)  # np.savez pickles object arrays
    state = {"reference": evil, "n_neighbors": np.int64(1)} if name == "knn.npz" else {"location": evil}
    np.savez(bundle / name, **state)
    _resign(bundle, name)
    with pytest.raises(ModelIntegrityError, match=rf"{name}.*only numbers are allowed"):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize("name", ["knn.npz", "mahalanobis.npz"])
def test_knn_or_mahalanobis_npz_that_is_not_a_zip_is_refused_through_the_cli(numpy_detector_bundle, name):
    bundle = numpy_detector_bundle
    (bundle / name).write_bytes(b"\x80\x04\x95" + bytes(100))  # pickle protocol 4 opcodes
    _resign(bundle, name)
    _cli_refuses(bundle, name, "not a valid .npz")


@pytest.mark.parametrize(
    ("name", "state", "message"),
    [
        ("knn.npz", {"reference": np.zeros((3, 193), np.float32), "n_neighbors": np.int64(4)}, "kNN"),
        (
            "mahalanobis.npz",
            {"location": np.zeros(193), "precision": np.eye(192), "shrinkage": 0.1, "n_reference": 9},
            "Mahalanobis",
        ),
    ],
    ids=["knn-k-above-reference", "mahalanobis-precision-shape"],
)
def test_inconsistent_knn_or_mahalanobis_state_is_refused(numpy_detector_bundle, name, state, message):
    """Numeric arrays pass the .npz checks; the detector's own load refuses shapes that do not fit together."""
    bundle = numpy_detector_bundle
    np.savez(bundle / name, **state)
    _resign(bundle, name)
    model = soundsentry.load_model(bundle)
    with pytest.raises(ModelIntegrityError, match=rf"{name}.*{message}.*inconsistent"):
        model.score(MONO_CLIP, detector=name.removesuffix(".npz"))


def test_untampered_knn_and_mahalanobis_copy_scores_like_the_original(numpy_detector_bundle, enrolled_with_numpy_detectors):
    original = soundsentry.load_model(enrolled_with_numpy_detectors)
    copy = soundsentry.load_model(numpy_detector_bundle)
    for det in ("knn", "mahalanobis"):
        assert copy.score(MONO_CLIP, detector=det).score == original.score(MONO_CLIP, detector=det).score


# -- ONNX ------------------------------------------------------------------------------------


def _tiny_graph(*, input_type=None, extra_input=False, output_name="latent", node_domain="", opset_domain=None):
    """An ONNX graph with the encoder's names: logmel (N, 128, 64) -> latent (N, 64)."""
    from onnx import TensorProto, helper

    input_type = TensorProto.FLOAT if input_type is None else input_type
    inputs = [helper.make_tensor_value_info("logmel", input_type, ["N", 128, 64])]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1]))
    nodes = [
        helper.make_node("Cast", ["logmel"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], [output_name], axes=[1], keepdims=0, domain=node_domain),
    ]
    if node_domain:
        nodes[1].op_type = "Exfiltrate"
    graph = helper.make_graph(
        nodes, "tampered", inputs, [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", 64])]
    )
    opsets = [helper.make_opsetid("", 17)]
    if opset_domain or node_domain:
        opsets.append(helper.make_opsetid(opset_domain or node_domain, 1))
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def _save_encoder(bundle, model):
    import onnx

    onnx.save(model, str(bundle / "encoder.onnx"))
    _resign(bundle, "encoder.onnx")


@requires("onnx")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"node_domain": "com.evil.ops"}, "custom domain 'com.evil.ops'"),
        ({"opset_domain": "org.example.native"}, "custom operator set 'org.example.native'"),
    ],
)
def test_onnx_with_custom_operator_domain_is_refused_before_onnx_runtime_sees_it(
    bundle, no_onnx_runtime, kwargs, message
):
    _save_encoder(bundle, _tiny_graph(**kwargs))
    with pytest.raises(ModelIntegrityError, match=message):
        soundsentry.load_model(bundle)


@requires("onnx")
def test_custom_operator_inside_a_subgraph_is_found(bundle, no_onnx_runtime):
    from onnx import TensorProto, helper

    inner = helper.make_graph(
        [helper.make_node("Exfiltrate", [], ["y"], domain="com.evil.ops")],
        "then",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = _tiny_graph()
    cond = helper.make_node("Constant", [], ["c"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True]))
    branch = helper.make_node("If", ["c"], ["unused"], then_branch=inner, else_branch=inner)
    model.graph.node.extend([cond, branch])
    _save_encoder(bundle, model)
    with pytest.raises(ModelIntegrityError, match="Exfiltrate"):
        soundsentry.load_model(bundle)


@requires("onnx")
def test_onnx_local_functions_are_refused(bundle, no_onnx_runtime):
    from onnx import helper

    model = _tiny_graph()
    model.functions.append(
        helper.make_function("local.fns", "Double", ["x"], ["y"], [helper.make_node("Add", ["x", "x"], ["y"])], [])
    )
    _save_encoder(bundle, model)
    with pytest.raises(ModelIntegrityError, match="local functions"):
        soundsentry.load_model(bundle)


@requires("onnx")
def test_onnx_weights_in_an_external_file_are_refused(bundle, tmp_path, no_onnx_runtime):
    # External data names a path ONNX Runtime would open: a way to read files outside the bundle.
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    model = onnx.load(str(bundle / "encoder.onnx"))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    onnx.save(model, str(bundle / "encoder.onnx"))
    _resign(bundle, "encoder.onnx")
    with pytest.raises(ModelIntegrityError, match="external file"):
        soundsentry.load_model(bundle)


@requires("onnx")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"extra_input": True}, "unexpected ONNX interface"),
        ({"output_name": "embedding"}, "unexpected ONNX interface"),
        ({"input_type": 7}, r"unexpected ONNX input types \(logmel: tensor\(int64\)\)"),  # INT64
    ],
)
def test_onnx_with_unexpected_inputs_or_outputs_is_refused(bundle, kwargs, message):
    _save_encoder(bundle, _tiny_graph(**kwargs))
    with pytest.raises(ModelIntegrityError, match=message):
        soundsentry.load_model(bundle)


@requires("onnx")
def test_ocsvm_with_custom_domain_is_refused_at_load_not_at_first_use(bundle, no_onnx_runtime):
    import onnx

    model = onnx.load(str(bundle / "ocsvm.onnx"))
    for node in model.graph.node:
        if node.domain == "ai.onnx.ml":
            node.domain = "ai.onnx.ml.evil"
    model.opset_import.append(onnx.helper.make_opsetid("ai.onnx.ml.evil", 1))
    onnx.save(model, str(bundle / "ocsvm.onnx"))
    _resign(bundle, "ocsvm.onnx")
    with pytest.raises(ModelIntegrityError, match=r"ocsvm\.onnx.*custom domain 'ai\.onnx\.ml\.evil'"):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize("content", [b"", b"\x00" * 1000, b"not onnx at all\n" * 20, os.urandom(4096)])
def test_garbage_onnx_is_a_clear_error(bundle, content):
    (bundle / "encoder.onnx").write_bytes(content)
    _resign(bundle, "encoder.onnx")
    with pytest.raises(ModelIntegrityError, match=r"encoder\.onnx"):
        soundsentry.load_model(bundle)


# -- cards -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(format_version=2), "unsupported format version 2"),
        (lambda c: c.update(format_version="1"), "unsupported format version '1'"),
        (lambda c: c.update(format_version=True), "unsupported format version True"),
        (lambda c: c.update(format="onnx-bundle"), "unknown bundle format"),
        (lambda c: c["detectors"]["lof"].update(threshold=float("nan")), "finite numeric threshold"),
        (lambda c: c["detectors"]["lof"].update(threshold="1.5"), "finite numeric threshold"),
        (lambda c: c["features"].update(n_fft=1 << 30), r"features\.n_fft must be an integer"),
        (lambda c: c["features"].update(sample_rate=16000.5), r"features\.sample_rate must be an integer"),
        (lambda c: c["window"].update(frames=10**9), r"window\.frames must be an integer"),
        (lambda c: c["normalization"]["std"].__setitem__(3, 0.0), "std must be positive"),
        (lambda c: c["normalization"].update(mean="zeros"), "list of finite numbers"),
        (lambda c: c["files"].update({"lof.npz": 12}), "not a sha256"),
        (lambda c: c.update(files=["encoder.onnx"]), "'files' must map"),
    ],
)
def test_malformed_card_is_refused(bundle, edit, message, no_onnx_runtime):
    card = _card(bundle)
    edit(card)
    _write_card(bundle, card)
    with pytest.raises(ModelIntegrityError, match=message):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize(
    "content",
    [b"[" * 100_000, b'{"format": "soundsentry-bundle", ' * 3, b"\xef\xbb\xbf{}", b"\xff\xfe garbage", b"[]"],
    ids=["deeply-nested", "truncated", "bom", "not-utf8", "not-an-object"],
)
def test_card_that_is_not_json_is_refused(bundle, content):
    (bundle / "model.json").write_bytes(content)
    with pytest.raises(ModelIntegrityError, match=r"model\.json"):
        soundsentry.load_model(bundle)


def test_unknown_version_through_the_cli_exits_4_without_traceback(bundle):
    card = _card(bundle)
    card["format_version"] = 99
    _write_card(bundle, card)
    _cli_refuses(bundle, "unsupported format version 99", "model.json")


# -- paths leaving the bundle ----------------------------------------------------------------


def test_symlink_out_of_the_bundle_is_refused(bundle, tmp_path, no_np_load):
    # The checksum matches (it is the same file), but it lives outside the bundle.
    outside = tmp_path / "elsewhere.npz"
    shutil.move(bundle / "lof.npz", outside)
    (bundle / "lof.npz").symlink_to(outside)
    with pytest.raises(ModelIntegrityError, match="leaves the bundle folder"):
        soundsentry.load_model(bundle)


@pytest.mark.parametrize("bad", ["../../../etc/passwd", "/etc/passwd", "sub/../../lof.npz", "./../fan_copy/../x"])
def test_detector_file_leaving_the_bundle_is_refused_through_the_cli(bundle, bad):
    card = _card(bundle)
    card["detectors"]["lof"]["file"] = bad
    card["files"][bad] = "0" * 64
    _write_card(bundle, card)
    _cli_refuses(bundle, "leaves the bundle folder", repr(bad))


def test_untampered_copy_still_scores_like_the_original(bundle, logmel_model):
    """The checks refuse only what is wrong: the real bundle passes them all."""
    copy = soundsentry.load_model(bundle)
    assert copy.score(MONO_CLIP).score == logmel_model.score(MONO_CLIP).score


def test_untampered_views_copy_still_scores_like_the_shipped_model(views_bundle, fan_model):
    copy = soundsentry.load_model(views_bundle)
    assert copy.score(MONO_CLIP).score == fan_model.score(MONO_CLIP).score


@pytest.mark.parametrize("bad", ["../../../etc/passwd", "/etc/passwd"])
def test_views_file_leaving_the_bundle_is_refused_through_the_cli(views_bundle, bad):
    card = _card(views_bundle)
    card["detectors"]["views"]["file"] = bad
    card["files"][bad] = "0" * 64
    _write_card(views_bundle, card)
    _cli_refuses(views_bundle, "leaves the bundle folder", repr(bad))


def test_no_pickle_anywhere_in_the_package():
    """Nothing in the package can unpickle: no pickle, joblib or dill, and every np.load
    passes allow_pickle=False."""
    import re

    sources = [p for d in ("runtime", "train", "export", "gui") for p in (REPO_ROOT / d).rglob("*.py")]
    assert len(sources) > 20
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from)\s+(pickle|cPickle|joblib|dill|cloudpickle)\b", text, re.M), path
        assert "allow_pickle=True" not in text, path
        for call in re.findall(r"np\.load\([^)]*\)", text):
            assert "allow_pickle=False" in call, f"{path}: {call}"
