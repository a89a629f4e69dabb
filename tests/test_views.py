"""The views detector and the signal views: real clips, references computed in the test."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from soundsentry.calibration import lognormal_threshold
from soundsentry.edgel3_encoder import display_band_edges_hz, frame_rows, frame_windows, signal_rows
from soundsentry.errors import ModelIntegrityError
from soundsentry.evidence import explain, summary
from soundsentry.views import ViewsDetector, ViewSpec, top_k_mean

from .conftest import DATA_DIR, MULTICHANNEL_CLIP, requires

# shape and level views, and the shape bands once more as an event view (the worst windows)
VIEWS = [ViewSpec("shape", 0, 64), ViewSpec("level", 64, 65, floor=3.0), ViewSpec("bands", 0, 64, pool="windows")]


def signal_views(y: np.ndarray) -> np.ndarray:
    """Shape and level rows of each 1-s window of 16 kHz audio, through the EdgeL3 views encoder's own steps."""
    return signal_rows(frame_windows(frame_rows(y)))


@pytest.fixture(scope="module")
def microphones() -> list[np.ndarray]:
    """The 8 microphones of one real MIMII moment, each as 1-s windows of signal views."""
    y, sr = sf.read(MULTICHANNEL_CLIP, dtype="float32", always_2d=True)
    assert sr == 16000
    return [signal_views(y[:, c]) for c in range(y.shape[1])]


def test_level_is_the_windows_power_in_dbfs():
    y, _ = sf.read(DATA_DIR / "yos95_id_06_normal_id_06_00000012.flac", dtype="float32")
    views = signal_views(y)
    # the frames of window i span samples [16000 i, 16000 i + 17728); Hann-weighted frames of a steady
    # machine have the mean square of the samples they cover
    expected = [10 * np.log10(np.mean(y[16000 * i : 16000 * i + 17728].astype(np.float64) ** 2)) for i in range(len(views))]
    np.testing.assert_allclose(views[:, 64], expected, atol=0.3)
    # a gain of 2 is +6.02 dB and leaves the shape alone
    louder = signal_views(y * 2)
    np.testing.assert_allclose(louder[:, 64] - views[:, 64], 20 * np.log10(2), atol=1e-3)
    np.testing.assert_allclose(louder[:, :64], views[:, :64], atol=1e-3)


@requires("librosa")
def test_shape_matches_librosa_mel_spectrum():
    import librosa

    y, _ = sf.read(DATA_DIR / "yos95_id_06_normal_id_06_00000012.flac", dtype="float32")
    ours = signal_views(y)[:3, :64]
    for i in range(3):
        s = y[16000 * i : 16000 * i + 17728]
        mel = librosa.feature.melspectrogram(y=s, sr=16000, n_fft=2048, hop_length=320, n_mels=64, center=False)
        db = 10 * np.log10(mel.mean(axis=1) + 1e-12)
        # the shape is relative to its own mean, so librosa's different power scaling cancels
        np.testing.assert_allclose(ours[i], db - db.mean(), atol=2e-3)


@requires("sklearn")
def test_view_distances_match_scikit_learn_neighbours(microphones):
    from sklearn.neighbors import NearestNeighbors

    det = ViewsDetector(views=VIEWS, n_neighbors=3).fit(microphones[1:])
    X = microphones[0]
    got = det.view_distances(X)
    for v, view in enumerate(VIEWS):
        reference = det.recording_means_ if view.pool == "clip" else det.reference_
        nn = NearestNeighbors(n_neighbors=3).fit(reference[:, view.start : view.stop])
        dist, _ = nn.kneighbors(X[:, view.start : view.stop])
        np.testing.assert_allclose(got[:, v], dist.mean(axis=1), rtol=1e-5, atol=1e-5)


@requires("sklearn")
def test_a_long_recordings_windows_are_measured_in_blocks_with_the_same_distances(microphones):
    """More windows than one block of distances (an hour is 3,600): every row still gets its own
    neighbours, so memory stays bounded without changing a score."""
    from sklearn.neighbors import NearestNeighbors
    from soundsentry import views as views_module

    det = ViewsDetector(views=VIEWS, n_neighbors=3).fit(microphones[1:])
    rng = np.random.default_rng(0)
    X = np.concatenate([m + rng.normal(0, 0.1, m.shape).astype(np.float32) for _ in range(5) for m in microphones])
    assert X.shape[0] > views_module._DISTANCE_BLOCK
    got = det.view_distances(X)
    for v, view in enumerate(VIEWS):
        reference = det.recording_means_ if view.pool == "clip" else det.reference_
        dist, _ = NearestNeighbors(n_neighbors=3).fit(reference[:, view.start : view.stop]).kneighbors(X[:, view.start : view.stop])
        np.testing.assert_allclose(got[:, v], dist.mean(axis=1), rtol=1e-5, atol=1e-5)


def test_thresholds_come_from_leave_one_recording_out(microphones):
    det = ViewsDetector(views=VIEWS).fit(microphones[1:])
    # recording 0's calibration statistic is its clip statistic against the other six
    rest = ViewsDetector(views=VIEWS).fit(microphones[2:])
    own = rest.clip_view_scores(microphones[1]) * rest.thresholds_
    np.testing.assert_allclose(det.calibration_[0], own, rtol=1e-5)
    # a clip view's statistic: the clip's mean row against the other recordings' mean rows
    means = np.stack([m.mean(0) for m in microphones[2:]])
    d = np.sort(np.linalg.norm(means[:, :64] - microphones[1].mean(0)[:64], axis=1))[:3].mean()
    np.testing.assert_allclose(det.calibration_[0][0], d, rtol=1e-5)
    # an event view's: the mean of the top_k window distances
    windows = rest.view_distances(microphones[1])[:, 2]
    np.testing.assert_allclose(det.calibration_[0][2], top_k_mean(windows, det.top_k), rtol=1e-5)
    assert det.thresholds_[1] >= 3.0  # the level floor holds
    assert det.calibration_.shape == (7, 3)


def test_an_unheard_microphone_of_the_same_moment_is_normal_and_a_gain_step_is_flagged_as_louder(microphones):
    det = ViewsDetector(views=VIEWS).fit(microphones[1:])
    assert det.clip_score(microphones[0]) < 1.0
    y, _ = sf.read(MULTICHANNEL_CLIP, dtype="float32", always_2d=True)
    louder = signal_views(y[:, 0] * 10 ** (8 / 20))  # +8 dB
    assert det.clip_score(louder) > 1.0
    evidence = explain(det, louder, band_edges_hz=display_band_edges_hz())
    assert evidence[0].view == "level" and evidence[0].flagged
    # the reading is the clip's level against the enrolled recordings' median level
    expected = louder[:, 64].mean() - np.median(np.concatenate([m[:, 64] for m in microphones[1:]]))
    assert evidence[0].value == pytest.approx(expected, abs=0.05)
    assert evidence[0].value > 3.0
    assert "louder than enrolled" in summary(evidence)


def test_a_band_change_is_named_by_the_shape_view(microphones):
    det = ViewsDetector(views=VIEWS).fit(microphones[1:])
    y, _ = sf.read(MULTICHANNEL_CLIP, dtype="float32", always_2d=True)
    # a steady 1.5 kHz whine well above the fan's own spectrum there
    t = np.arange(len(y)) / 16000
    whine = y[:, 0] + 0.05 * np.sin(2 * np.pi * 1500 * t).astype(np.float32)
    evidence = {e.view: e for e in explain(det, signal_views(whine), band_edges_hz=display_band_edges_hz())}
    assert evidence["shape"].flagged
    assert evidence["shape"].reading.startswith("1 kHz-2 kHz band +")


def _with_clicks(y: np.ndarray) -> np.ndarray:
    """Six short bursts at 8x the clip's RMS: a knock or a rattle that adds a little sound."""
    rng = np.random.default_rng(0)
    out = y.copy()
    rms = float(np.sqrt(np.mean(y**2)))
    for start in rng.choice(len(y) - 160, 6, replace=False):
        out[start : start + 80] += (rms * 8 * rng.standard_normal(80)).astype(np.float32)
    return out


def test_the_verdict_is_any_view_over_its_own_threshold_and_flagged_clips_rank_by_the_sum(microphones):
    det = ViewsDetector(views=VIEWS).fit(microphones[1:])
    assert det.combine == "max-then-sum"
    # the sum's bound is the views' log-normal rule on the leave-one-out sums of ratios
    assert det.combined_threshold_ == pytest.approx(
        lognormal_threshold(
            (det.calibration_ / det.thresholds_).sum(axis=1), quantile=det.quantile, n_recordings=7,
            prior_spread=det.prior_spread, single_recording_spread=det.single_recording_spread,
        )
    )
    y, _ = sf.read(MULTICHANNEL_CLIP, dtype="float32", always_2d=True)
    clips = [microphones[0], signal_views(y[:, 0] * 10 ** (8 / 20)), signal_views(_with_clicks(y[:, 0]))]
    for clip in clips:
        ratios = det.clip_view_scores(clip)
        score = det.clip_score(clip)
        assert (score > 1) == (ratios.max() > 1)
        expected = 1 + ratios.sum() / det.combined_threshold_ if ratios.max() > 1 else ratios.max()
        assert score == pytest.approx(expected)


def test_a_whole_recording_quieter_does_not_rank_a_knock_below_the_normal_clip(microphones):
    """Another day at -8 dB: every clip is flagged as quieter. Clicks add a little sound, so the level
    view finds the knocking clip *nearer* the enrolled level; the largest ratio alone ranks it as more
    normal than the plain clip, the sum of every view's ratio does not."""
    y, _ = sf.read(MULTICHANNEL_CLIP, dtype="float32", always_2d=True)
    quiet = y[:, 0] * 10 ** (-8 / 20)
    plain, knocking = signal_views(quiet), signal_views(_with_clicks(quiet))
    by_sum = ViewsDetector(views=VIEWS).fit(microphones[1:])
    by_max = ViewsDetector(views=VIEWS, combine="max").fit(microphones[1:])
    assert by_sum.clip_score(plain) > 1 and by_max.clip_score(plain) > 1  # flagged alike: "quieter"
    assert by_max.clip_score(knocking) < by_max.clip_score(plain)
    assert by_sum.clip_score(knocking) > by_sum.clip_score(plain)


def test_a_file_written_before_the_sum_scores_by_the_largest_ratio(tmp_path, microphones):
    det = ViewsDetector(views=VIEWS).fit(microphones[1:])
    det.save(tmp_path / "new.npz")
    with np.load(tmp_path / "new.npz") as data:
        old = {k: data[k] for k in data.files if k not in ("combine", "combined_threshold")}
    np.savez(tmp_path / "old.npz", **old)
    loaded = ViewsDetector.load(tmp_path / "old.npz")
    assert loaded.combine == "max"
    y, _ = sf.read(MULTICHANNEL_CLIP, dtype="float32", always_2d=True)
    louder = signal_views(y[:, 0] * 10 ** (8 / 20))
    assert loaded.clip_score(louder) == pytest.approx(loaded.clip_view_scores(louder).max())
    assert ViewsDetector.load(tmp_path / "new.npz").clip_score(louder) == pytest.approx(det.clip_score(louder))


def test_one_recording_is_calibrated_on_blocks(microphones):
    det = ViewsDetector(views=VIEWS).fit(microphones[:1])
    assert det.n_recordings_ == 1
    assert len(det.calibration_) == len(microphones[0]) // det.block_windows
    assert np.all(np.isfinite(det.thresholds_))


def test_save_and_load_give_the_same_scores_and_refuse_a_tampered_file(tmp_path, microphones):
    det = ViewsDetector(views=VIEWS).fit(microphones[1:])
    path = tmp_path / "views.npz"
    det.save(path)
    again = ViewsDetector.load(path)
    np.testing.assert_array_equal(again.anomaly_score(microphones[0]), det.anomaly_score(microphones[0]))
    assert [v.name for v in again.views] == ["shape", "level", "bands"]
    with np.load(path) as data:
        arrays = dict(data)
    arrays["thresholds"] = -arrays["thresholds"]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelIntegrityError, match=r"bad\.npz"):
        ViewsDetector.load(tmp_path / "bad.npz")
