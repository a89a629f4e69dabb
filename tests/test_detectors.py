"""The NumPy LOF and the ONNX One-Class SVM against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from soundsentry import ModelIntegrityError
from soundsentry.detectors import LocalOutlierFactor, OneClassSVMOnnx

from .conftest import DATA_CLIPS, requires


@pytest.fixture(scope="module")
def sklearn_neighbors():
    return pytest.importorskip("sklearn.neighbors")


@pytest.fixture(scope="module")
def clip_latents(fan_model) -> dict[str, np.ndarray]:
    """Encoder latents of every analysis window of each tests/data clip."""
    m = fan_model
    return {p.name: m.embed(m.windows(m.features(m.load(p)))) for p in DATA_CLIPS}


def _sklearn_lof(sklearn_neighbors, reference: np.ndarray, k: int):
    return sklearn_neighbors.LocalOutlierFactor(n_neighbors=k, novelty=True).fit(reference)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_lof_matches_sklearn_on_real_latents(sklearn_neighbors, clip_latents, k):
    names = sorted(clip_latents)
    reference = np.concatenate([clip_latents[n] for n in names[:-1]])
    queries = np.concatenate([clip_latents[names[-1]], reference[:5] + 0.01])
    assert reference.dtype == np.float32 and reference.shape[0] > k + 1
    ours = LocalOutlierFactor(n_neighbors=k).fit(reference)
    expected = _sklearn_lof(sklearn_neighbors, reference.astype(np.float64), k).score_samples(
        queries.astype(np.float64)
    )
    np.testing.assert_allclose(ours.score_samples(queries), expected, rtol=1e-5)


def test_shipped_lof_matches_sklearn_refit(sklearn_neighbors, fan_model, clip_latents):
    """The bundle's stored state (k-distances, densities) scores like scikit-learn fitted on its reference set."""
    lof = fan_model.detector("lof")
    assert isinstance(lof, LocalOutlierFactor)
    queries = np.concatenate(list(clip_latents.values()))
    expected = _sklearn_lof(sklearn_neighbors, lof.reference_, lof.n_neighbors_).score_samples(
        queries.astype(np.float64)
    )
    np.testing.assert_allclose(lof.score_samples(queries), expected, rtol=1e-5)
    np.testing.assert_allclose(fan_model.score_latents(queries, detector="lof"), -expected, rtol=1e-5)


@pytest.mark.parametrize("k", [1, 2, 7, 20, 49])
@pytest.mark.parametrize("seed", [0, 1])
def test_lof_matches_sklearn_on_random_data(sklearn_neighbors, k, seed):
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal((50, 6))
    reference[:10] *= 0.1  # a dense cluster next to a sparse one: densities differ
    queries = np.concatenate([rng.standard_normal((40, 6)) * 2.0, reference[:3]])
    ours = LocalOutlierFactor(n_neighbors=k).fit(reference)
    expected = _sklearn_lof(sklearn_neighbors, reference, k).score_samples(queries)
    np.testing.assert_allclose(ours.score_samples(queries), expected, rtol=1e-5)


def test_lof_blocks_do_not_change_scores():
    rng = np.random.default_rng(3)
    reference = rng.standard_normal((60, 4))
    queries = rng.standard_normal((25, 4))
    whole = LocalOutlierFactor(n_neighbors=5).fit(reference).score_samples(queries)
    blocked = LocalOutlierFactor(n_neighbors=5, block_size=7).fit(reference).score_samples(queries)
    np.testing.assert_array_equal(blocked, whole)


def test_lof_save_load_roundtrip(tmp_path, clip_latents):
    reference = np.concatenate(list(clip_latents.values())[:2])  # float32, so saving loses nothing
    queries = np.concatenate(list(clip_latents.values())[2:])
    lof = LocalOutlierFactor(n_neighbors=10).fit(reference)
    path = tmp_path / "lof.npz"
    lof.save(path)
    loaded = LocalOutlierFactor.load(path)
    assert loaded.n_neighbors_ == lof.n_neighbors_
    np.testing.assert_array_equal(loaded.score_samples(queries), lof.score_samples(queries))
    np.testing.assert_array_equal(loaded.anomaly_score(queries), lof.anomaly_score(queries))


def test_lof_load_refuses_pickled_npz(tmp_path):
    path = tmp_path / "lof.npz"
    np.savez(
        path,
        reference=np.array([np.zeros(3), "not numbers"], dtype=object),
        k_distance=np.ones(2),
        lrd=np.ones(2),
        n_neighbors=np.int64(1),
    )
    with pytest.raises(ModelIntegrityError):
        LocalOutlierFactor.load(path)


@pytest.mark.parametrize(
    "broken",
    [
        {"k_distance": np.ones(3)},  # wrong length
        {"n_neighbors": np.int64(0)},
        {"n_neighbors": np.int64(4)},  # k must be below the reference size
        {"missing": "lrd"},
    ],
    ids=["k_distance-shape", "k-zero", "k-too-large", "missing-key"],
)
def test_lof_load_refuses_inconsistent_state(tmp_path, broken):
    state = {"reference": np.zeros((4, 2), np.float32), "k_distance": np.ones(4), "lrd": np.ones(4), "n_neighbors": 2}
    state.update({k: v for k, v in broken.items() if k != "missing"})
    state.pop(broken.get("missing", ""), None)
    path = tmp_path / "lof.npz"
    np.savez(path, **state)
    with pytest.raises(ModelIntegrityError):
        LocalOutlierFactor.load(path)


def test_lof_load_refuses_non_npz(tmp_path):
    path = tmp_path / "lof.npz"
    path.write_text("not an npz")
    with pytest.raises(ModelIntegrityError):
        LocalOutlierFactor.load(path)


def test_lof_higher_anomaly_score_is_more_anomalous(fan_model, clip_latents):
    lof = fan_model.detector("lof")
    inlier = lof.reference_[:1]
    far = inlier + 100.0 * (np.abs(lof.reference_).max() + 1.0)
    inlier_score, far_score = lof.anomaly_score(np.concatenate([inlier, far]))
    assert far_score > inlier_score
    assert far_score > 10 * inlier_score


def test_ocsvm_anomaly_score_is_negated_score_samples(fan_model, clip_latents):
    svm = fan_model.detector("ocsvm")
    assert isinstance(svm, OneClassSVMOnnx)
    latents = np.concatenate(list(clip_latents.values()))
    raw = svm.score_samples(latents)
    assert raw.shape == (latents.shape[0],)
    np.testing.assert_array_equal(svm.anomaly_score(latents), -raw)
    np.testing.assert_array_equal(fan_model.score_latents(latents, detector="ocsvm"), -raw)


def test_ocsvm_far_point_is_more_anomalous(fan_model):
    svm = fan_model.detector("ocsvm")
    lof = fan_model.detector("lof")
    inlier = lof.reference_[:1]  # a training window's latent
    far = inlier + 100.0 * (np.abs(lof.reference_).max() + 1.0)
    inlier_score, far_score = svm.anomaly_score(np.concatenate([inlier, far]))
    assert far_score > inlier_score


@requires("sklearn")
@requires("skl2onnx")
def test_ocsvm_onnx_export_matches_sklearn_decision_function(tmp_path, clip_latents):
    from sklearn.svm import OneClassSVM
    from soundsentry.export.ocsvm import export_ocsvm

    names = sorted(clip_latents)
    train = np.concatenate([clip_latents[n] for n in names[:2]]).astype(np.float64)
    queries = np.concatenate([clip_latents[n] for n in names[2:]])
    svm = OneClassSVM(nu=0.05, gamma="scale").fit(train)
    path = tmp_path / "ocsvm.onnx"
    export_ocsvm(svm, path, latent_dim=train.shape[1])
    onnx_svm = OneClassSVMOnnx(path)
    expected = svm.decision_function(queries.astype(np.float64))
    # ONNX runs in float32: compare at the scale of the scores.
    np.testing.assert_allclose(onnx_svm.score_samples(queries), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
