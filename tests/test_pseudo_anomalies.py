"""Synthetic faults on normal clips (studies.pseudo_anomalies), the model-selection probe.

They must be what the accuracy document says they are (family, level, seeded), and the probe's
AUC must be the AUC of the runtime's own clip scores (checked against scikit-learn).
"""

from __future__ import annotations

import numpy as np
import pytest
from soundsentry.audio import read_audio

from .conftest import MONO_CLIP, MULTICHANNEL_CLIP, requires

pytestmark = requires("sklearn")

RATE = 16000


def _clip() -> np.ndarray:
    samples, rate = read_audio(MONO_CLIP)
    assert rate == RATE
    return samples[:, 0].astype(np.float32)


def _rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.mark.parametrize("family", ["tone", "clicks"])
def test_additive_faults_have_the_documented_level(family):
    from studies.pseudo_anomalies import FAMILIES, make_pseudo_anomaly

    y = _clip()
    added = make_pseudo_anomaly(y, family=family, rng=np.random.default_rng(1)) - y
    if family == "tone":
        level = 20 * np.log10(_rms(added) / _rms(y))
    else:  # the bursts' own level, measured over the samples they occupy
        level = 20 * np.log10(_rms(added[np.abs(added) > 0]) / _rms(y))
    assert level == pytest.approx(FAMILIES[family], abs=2.0 if family == "clicks" else 0.05)


def test_band_fault_changes_one_octave_by_its_gain_and_leaves_the_rest():
    from studies.pseudo_anomalies import FAMILIES, make_pseudo_anomaly

    y = _clip()
    out = make_pseudo_anomaly(y, family="band", rng=np.random.default_rng(3))
    ratio_db = 20 * np.log10(np.abs(np.fft.rfft(out)) / np.maximum(np.abs(np.fft.rfft(y)), 1e-12))
    freqs = np.fft.rfftfreq(len(y), 1 / RATE)
    peak = freqs[np.argmax(np.abs(ratio_db))]
    assert np.max(np.abs(ratio_db)) == pytest.approx(FAMILIES["band"], abs=0.1)
    far = np.abs(np.log2(np.maximum(freqs, 1.0) / peak)) > 0.6  # outside the octave: untouched
    assert np.max(np.abs(ratio_db[far])) < 0.01


def test_modulation_makes_the_level_beat():
    from studies.pseudo_anomalies import make_pseudo_anomaly

    y = _clip()
    out = make_pseudo_anomaly(y, family="modulation", rng=np.random.default_rng(0))
    envelope = out / np.where(np.abs(y) > 1e-4, y, np.nan)
    swing_db = 20 * np.log10(np.nanmax(envelope) / np.nanmin(envelope))
    assert 4.0 < swing_db < 6.0  # depth -10 dB: 1 +- 0.316, a 5.7 dB swing at most


def test_faults_are_seeded_and_unknown_families_refused():
    from studies.pseudo_anomalies import make_pseudo_anomaly

    y = _clip()
    a = make_pseudo_anomaly(y, family="tone", rng=np.random.default_rng(7))
    assert np.array_equal(a, make_pseudo_anomaly(y, family="tone", rng=np.random.default_rng(7)))
    assert not np.array_equal(a, make_pseudo_anomaly(y, family="tone", rng=np.random.default_rng(8)))
    with pytest.raises(ValueError, match="unknown pseudo-anomaly family"):
        make_pseudo_anomaly(y, family="rattle", rng=np.random.default_rng(0))


@pytest.mark.parametrize("which", ["fan_model", "logmel_model"])
def test_probe_auc_is_the_auc_of_the_runtime_scores(request, which):
    fan_model = request.getfixturevalue(which)  # the views detector's clip score, and the four log-mel detectors'
    from sklearn.metrics import roc_auc_score
    from soundsentry.train.data import Clip

    from studies.pseudo_anomalies import FAMILIES, pseudo_anomaly_auc, pseudo_anomaly_set

    probe = pseudo_anomaly_set([Clip(path=MULTICHANNEL_CLIP), Clip(path=MONO_CLIP)], max_channels=3)
    assert len(probe.normal) == 4  # 3 microphones of the MIMII file + the mono clip
    assert len(probe.perturbed) == len(FAMILIES) * 4
    again = pseudo_anomaly_set([Clip(path=MONO_CLIP), Clip(path=MULTICHANNEL_CLIP)], max_channels=3)
    assert np.array_equal(probe.perturbed[0], again.perturbed[len(FAMILIES)])  # seeded by clip, not by order

    result = pseudo_anomaly_auc(fan_model, probe)
    assert set(result) == set(fan_model.detectors)
    for detector, entry in result.items():
        normal = [fan_model.score(y, sample_rate=RATE, detector=detector).score for y in probe.normal]
        faulty = [fan_model.score(y, sample_rate=RATE, detector=detector).score for y in probe.perturbed]
        expected = roc_auc_score([0] * len(normal) + [1] * len(faulty), normal + faulty)
        assert entry["all"] == pytest.approx(expected, abs=1e-4)
        tones = [s for s, f in zip(faulty, probe.families, strict=True) if f == "tone"]
        assert entry["tone"] == pytest.approx(roc_auc_score([0] * 4 + [1] * 4, normal + tones), abs=1e-4)
