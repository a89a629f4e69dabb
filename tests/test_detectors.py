"""The NumPy LOF, kNN and Mahalanobis detectors and the ONNX One-Class SVM against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from soundsentry import ModelIntegrityError
from soundsentry.detectors import KNearestNeighbors, LocalOutlierFactor, Mahalanobis, OneClassSVMOnnx

from .conftest import DATA_CLIPS, requires


@pytest.fixture(scope="module")
def sklearn_neighbors():
    return pytest.importorskip("sklearn.neighbors")


@pytest.fixture(scope="module")
def clip_latents(logmel_model) -> dict[str, np.ndarray]:
    """Encoder latents of every analysis window of each tests/data clip."""
    m = logmel_model
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


def test_shipped_lof_matches_sklearn_refit(sklearn_neighbors, logmel_model, clip_latents):
    """The bundle's stored state (k-distances, densities) scores like scikit-learn fitted on its reference set."""
    lof = logmel_model.detector("lof")
    assert isinstance(lof, LocalOutlierFactor)
    queries = np.concatenate(list(clip_latents.values()))
    expected = _sklearn_lof(sklearn_neighbors, lof.reference_, lof.n_neighbors_).score_samples(
        queries.astype(np.float64)
    )
    np.testing.assert_allclose(lof.score_samples(queries), expected, rtol=1e-5)
    np.testing.assert_allclose(logmel_model.score_latents(queries, detector="lof"), -expected, rtol=1e-5)


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


def test_lof_higher_anomaly_score_is_more_anomalous(logmel_model, clip_latents):
    lof = logmel_model.detector("lof")
    inlier = lof.reference_[:1]
    far = inlier + 100.0 * (np.abs(lof.reference_).max() + 1.0)
    inlier_score, far_score = lof.anomaly_score(np.concatenate([inlier, far]))
    assert far_score > inlier_score
    assert far_score > 10 * inlier_score


def test_ocsvm_anomaly_score_is_negated_score_samples(logmel_model, clip_latents):
    svm = logmel_model.detector("ocsvm")
    assert isinstance(svm, OneClassSVMOnnx)
    latents = np.concatenate(list(clip_latents.values()))
    raw = svm.score_samples(latents)
    assert raw.shape == (latents.shape[0],)
    np.testing.assert_array_equal(svm.anomaly_score(latents), -raw)
    np.testing.assert_array_equal(logmel_model.score_latents(latents, detector="ocsvm"), -raw)


def test_ocsvm_far_point_is_more_anomalous(logmel_model):
    svm = logmel_model.detector("ocsvm")
    lof = logmel_model.detector("lof")
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


# -- kNN (mean distance to the k nearest reference windows) ---------------------------------


def _sklearn_knn(sklearn_neighbors, reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """scikit-learn's mean distance to the k nearest reference points, shape (n_queries,)."""
    nn = sklearn_neighbors.NearestNeighbors(n_neighbors=k).fit(reference.astype(np.float64))
    distances, _ = nn.kneighbors(queries.astype(np.float64))
    return distances.mean(axis=1)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_knn_matches_sklearn_on_real_latents(sklearn_neighbors, clip_latents, k):
    names = sorted(clip_latents)
    reference = np.concatenate([clip_latents[n] for n in names[:-1]])
    # The last clip is unseen; copies of reference windows have a zero distance among their k.
    queries = np.concatenate([clip_latents[names[-1]], reference[:5], reference[5:10] + 0.01])
    ours = KNearestNeighbors(n_neighbors=k).fit(reference)
    expected = _sklearn_knn(sklearn_neighbors, reference, queries, k)
    # A zero distance comes out of |a|^2 + |b|^2 - 2ab as ~sqrt(eps) x the norm, in either library.
    np.testing.assert_allclose(ours.anomaly_score(queries), expected, rtol=1e-6, atol=1e-6 * expected.max())
    np.testing.assert_array_equal(ours.score_samples(queries), -ours.anomaly_score(queries))


@pytest.mark.parametrize("k", [1, 3, 17, 50])
@pytest.mark.parametrize("seed", [0, 1])
def test_knn_matches_sklearn_on_random_data(sklearn_neighbors, k, seed):
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal((50, 6))
    reference[:10] *= 0.1
    queries = np.concatenate([rng.standard_normal((40, 6)) * 2.0, reference[:3]])
    ours = KNearestNeighbors(n_neighbors=k).fit(reference)  # k == 50 uses every reference point
    expected = _sklearn_knn(sklearn_neighbors, reference, queries, k)
    np.testing.assert_allclose(ours.anomaly_score(queries), expected, rtol=1e-6, atol=1e-6 * expected.max())


def test_knn_blocks_do_not_change_scores():
    rng = np.random.default_rng(3)
    reference = rng.standard_normal((60, 4))
    queries = rng.standard_normal((25, 4))
    whole = KNearestNeighbors(n_neighbors=5).fit(reference).anomaly_score(queries)
    blocked = KNearestNeighbors(n_neighbors=5, block_size=7).fit(reference).anomaly_score(queries)
    np.testing.assert_array_equal(blocked, whole)


@pytest.mark.parametrize("k", [0, 11])
def test_knn_refuses_k_outside_the_reference_set(k):
    reference = np.random.default_rng(0).standard_normal((10, 3))
    with pytest.raises(ValueError, match=f"n_neighbors={k}.*10 reference points"):
        KNearestNeighbors(n_neighbors=k).fit(reference)


def test_knn_far_point_is_more_anomalous(clip_latents):
    reference = np.concatenate(list(clip_latents.values()))
    knn = KNearestNeighbors(n_neighbors=5).fit(reference)
    far = reference[:1] + 100.0 * (np.abs(reference).max() + 1.0)
    near_score, far_score = knn.anomaly_score(np.concatenate([reference[:1], far]))
    assert far_score > 10 * near_score


def test_knn_save_load_roundtrip(tmp_path, clip_latents):
    reference = np.concatenate(list(clip_latents.values())[:2])  # float32, so saving loses nothing
    queries = np.concatenate(list(clip_latents.values())[2:])
    knn = KNearestNeighbors(n_neighbors=7).fit(reference)
    path = tmp_path / "knn.npz"
    knn.save(path)
    loaded = KNearestNeighbors.load(path)
    assert loaded.n_neighbors_ == 7 and loaded.reference_.shape == reference.shape
    np.testing.assert_array_equal(loaded.anomaly_score(queries), knn.anomaly_score(queries))
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["n_neighbors", "reference"]


@pytest.mark.parametrize(
    "broken",
    [
        {"reference": np.array([np.zeros(3), "not numbers"], dtype=object)},  # pickled objects
        {"n_neighbors": np.int64(0)},
        {"n_neighbors": np.int64(5)},  # more neighbours than reference points
        {"reference": np.zeros(4, np.float32)},  # not 2-D
        {"reference": np.full((4, 2), np.nan, np.float32)},
        {"missing": "n_neighbors"},
    ],
    ids=["pickled", "k-zero", "k-too-large", "reference-1d", "reference-nan", "missing-key"],
)
def test_knn_load_refuses_bad_state(tmp_path, broken):
    state = {"reference": np.zeros((4, 2), np.float32), "n_neighbors": np.int64(2)}
    state.update({k: v for k, v in broken.items() if k != "missing"})
    state.pop(broken.get("missing", ""), None)
    path = tmp_path / "knn.npz"
    np.savez(path, **state)
    with pytest.raises(ModelIntegrityError, match="kNN"):
        KNearestNeighbors.load(path)


# -- Mahalanobis with a Ledoit-Wolf covariance ----------------------------------------------


@pytest.fixture(scope="module")
def sklearn_covariance():
    return pytest.importorskip("sklearn.covariance")


def _check_mahalanobis(sklearn_covariance, reference: np.ndarray, queries: np.ndarray) -> Mahalanobis:
    """Fit both; the fitted state and the squared distances must agree (scikit-learn returns squares)."""
    ours = Mahalanobis().fit(reference)
    sk = sklearn_covariance.LedoitWolf().fit(reference.astype(np.float64))
    assert ours.shrinkage_ == pytest.approx(sk.shrinkage_, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(ours.location_, sk.location_, rtol=1e-12, atol=1e-12)
    scale = np.abs(sk.precision_).max() or 1.0
    np.testing.assert_allclose(ours.precision_, sk.precision_, rtol=1e-6, atol=1e-9 * scale)
    want = sk.mahalanobis(queries.astype(np.float64))
    got = ours.anomaly_score(queries)
    np.testing.assert_allclose(got**2, want, rtol=1e-6, atol=1e-9 * (np.abs(want).max() or 1.0))
    np.testing.assert_array_equal(ours.score_samples(queries), -got)
    return ours


def test_mahalanobis_matches_sklearn_on_real_latents(sklearn_covariance, clip_latents):
    names = sorted(clip_latents)
    reference = np.concatenate([clip_latents[n] for n in names[:-1]])
    queries = np.concatenate([clip_latents[names[-1]], reference[:5]])
    ours = _check_mahalanobis(sklearn_covariance, reference, queries)
    assert 0.0 < ours.shrinkage_ < 1.0


def test_mahalanobis_matches_sklearn_with_fewer_windows_than_features(sklearn_covariance, clip_latents):
    """One clip's few correlated windows: the plain covariance is singular, the shrunk one is not."""
    reference = sorted(clip_latents.items())[0][1][:20]
    assert reference.shape[0] < reference.shape[1]
    assert np.linalg.matrix_rank(np.cov(reference.T.astype(np.float64))) < reference.shape[1]
    queries = np.concatenate(list(clip_latents.values()))
    ours = _check_mahalanobis(sklearn_covariance, reference, queries)
    assert np.isfinite(ours.anomaly_score(queries)).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_mahalanobis_matches_sklearn_on_correlated_random_data(sklearn_covariance, seed):
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((8, 8))
    reference = rng.standard_normal((30, 8)) @ mixing + 3.0
    queries = rng.standard_normal((40, 8)) @ mixing * 2.0
    _check_mahalanobis(sklearn_covariance, reference, queries)


def test_mahalanobis_constant_features_stay_finite(sklearn_covariance, clip_latents):
    """Dead latent units (constant over every window) do not blow up the distance: shrinkage keeps them invertible."""
    reference = np.concatenate(list(clip_latents.values())).astype(np.float64)
    reference[:, :5] = 0.25
    queries = reference[:10].copy()
    moved = queries.copy()
    moved[:, 0] += 1.0  # a change in a unit that never moved before
    ours = _check_mahalanobis(sklearn_covariance, reference, np.concatenate([queries, moved]))
    assert ours.shrinkage_ > 0
    base, shifted = ours.anomaly_score(queries), ours.anomaly_score(moved)
    assert np.isfinite(base).all() and np.isfinite(shifted).all()
    assert (shifted > base).all()


def test_mahalanobis_all_constant_reference_does_not_blow_up(sklearn_covariance):
    reference = np.full((10, 4), 2.0)
    queries = np.random.default_rng(0).standard_normal((5, 4))
    ours = _check_mahalanobis(sklearn_covariance, reference, queries)
    assert np.isfinite(ours.anomaly_score(queries)).all()


def test_mahalanobis_one_feature_matches_sklearn(sklearn_covariance):
    rng = np.random.default_rng(2)
    _check_mahalanobis(sklearn_covariance, rng.standard_normal((12, 1)) * 3.0, rng.standard_normal((6, 1)))


def test_mahalanobis_needs_two_reference_points():
    with pytest.raises(ValueError, match="at least two"):
        Mahalanobis().fit(np.zeros((1, 4)))


def test_mahalanobis_save_load_roundtrip(tmp_path, clip_latents):
    reference = np.concatenate(list(clip_latents.values())[:2])
    queries = np.concatenate(list(clip_latents.values())[2:])
    maha = Mahalanobis().fit(reference)
    path = tmp_path / "mahalanobis.npz"
    maha.save(path)
    loaded = Mahalanobis.load(path)
    assert loaded.n_reference_ == reference.shape[0] and loaded.shrinkage_ == maha.shrinkage_
    np.testing.assert_array_equal(loaded.anomaly_score(queries), maha.anomaly_score(queries))


@pytest.mark.parametrize(
    "broken",
    [
        {"precision": np.array([np.eye(2), "not numbers"], dtype=object)},  # pickled objects
        {"precision": np.eye(3)},  # does not match the location
        {"location": np.zeros((2, 1))},
        {"precision": np.full((2, 2), np.inf)},
        {"shrinkage": np.float64(1.5)},
        {"n_reference": np.int64(1)},
        {"missing": "precision"},
    ],
    ids=["pickled", "precision-shape", "location-2d", "precision-inf", "shrinkage-range", "n-reference", "missing-key"],
)
def test_mahalanobis_load_refuses_bad_state(tmp_path, broken):
    state = {"location": np.zeros(2), "precision": np.eye(2), "shrinkage": np.float64(0.1), "n_reference": np.int64(9)}
    state.update({k: v for k, v in broken.items() if k != "missing"})
    state.pop(broken.get("missing", ""), None)
    path = tmp_path / "mahalanobis.npz"
    np.savez(path, **state)
    with pytest.raises(ModelIntegrityError, match="Mahalanobis"):
        Mahalanobis.load(path)
