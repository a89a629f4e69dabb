"""Property tests (hypothesis) of the scoring invariants, and a bounded fuzz of
decode-and-score over mutated real files.

The fuzz runs for ``SOUNDSENTRY_FUZZ_SECONDS`` (default 20 s; CI uses the default) from a
fixed seed (``SOUNDSENTRY_FUZZ_SEED``, default 0), so a failure names the seed and case
that reproduce it. docs/robustness.md has the command and result of a longer run.
"""

from __future__ import annotations

import io
import itertools
import math
import os
import re
import time
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import soxr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from soundsentry.audio import load_audio, resample
from soundsentry.batch import score_file

from .conftest import DATA_CLIPS

RATE = 16000
MAX_CASE_SECONDS = 10.0
FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


# -- signals hypothesis can describe ------------------------------------------------------------


@st.composite
def signals(draw, *, min_samples: int, max_extra: int = 3 * RATE):
    """Finite float32 signals of many kinds and any scale, built from drawn parameters
    (drawing 40,000 floats one by one would make hypothesis crawl)."""
    n = draw(st.integers(min_samples, min_samples + max_extra), label="n")
    kind = draw(st.sampled_from(["noise", "sine", "constant", "impulses", "square", "raw"]), label="kind")
    scale = draw(
        st.floats(1e-30, 3e38, allow_nan=False, allow_infinity=False) | st.sampled_from([0.0, 1.0]), label="scale"
    )
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    if kind == "noise":
        y = rng.standard_normal(n)
    elif kind == "sine":
        y = np.sin(2 * np.pi * draw(st.floats(0.0, RATE / 2), label="freq") * t)
    elif kind == "constant":
        y = np.ones(n)
    elif kind == "impulses":
        y = np.zeros(n)
        y[rng.integers(0, n, size=draw(st.integers(1, 20)))] = 1.0
    elif kind == "square":
        y = np.sign(np.sin(2 * np.pi * 50 * t))
    else:  # raw float32 values, subnormals and the extremes included
        head = draw(arrays(np.float32, st.integers(1, 512), elements=st.floats(width=32, allow_nan=False, allow_infinity=False)))
        y = np.resize(head, n).astype(np.float64)
        scale = 1.0
    y = np.clip(y * scale, -3.4e38, 3.4e38).astype(np.float32)
    assert np.isfinite(y).all()
    return y


# -- invariants -----------------------------------------------------------------------------------


def _n_frames(model, n: int) -> int:
    """Frames the model's front end gives of ``n`` samples: centred (log-mel) or uncentred (EdgeL3 views)."""
    g = model.encoder.stream
    padded = n + 2 * g.pad_samples
    return 0 if padded < g.frame_length else 1 + (padded - g.frame_length) // g.frame_hop


#: Both encoder kinds: the shipped EdgeL3 views fan and the log-mel fixture bundle.
MODELS = pytest.mark.parametrize("which", ["fan_model", "logmel_model"])
#: Enough samples for one window of either kind (the log-mel window is the longer, 2.02 s).
ONE_WINDOW = 32256


@MODELS
@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURES)
@given(y=signals(min_samples=1, max_extra=20000))
def test_features_are_finite_for_any_finite_input(request, which, y):
    model = request.getfixturevalue(which)
    features = model.features(y)
    assert features.shape == (model.encoder.stream.n_features, _n_frames(model, y.shape[0]))
    assert np.isfinite(features).all()


@MODELS
@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURES)
@given(y=signals(min_samples=ONE_WINDOW))
def test_scores_are_finite_for_any_finite_input(request, which, y):
    model = request.getfixturevalue(which)
    for detector in model.detectors:
        result = model.score(y, detector=detector)
        assert np.isfinite(result.window_scores).all() and math.isfinite(result.score)
        assert result.verdict in ("normal", "abnormal")


@MODELS
@settings(max_examples=15, deadline=None, suppress_health_check=FIXTURES)
@given(
    y=signals(min_samples=ONE_WINDOW // 2, max_extra=2 * RATE),
    cuts=st.lists(st.integers(0, ONE_WINDOW + 2 * RATE), max_size=30),
    rate=st.sampled_from([16000, 8000, 44100]),
)
def test_streaming_in_any_chunks_equals_whole_clip(request, which, y, cuts, rate):
    model = request.getfixturevalue(which)
    whole = model.score(y, sample_rate=rate) if len(y) * 16000 // rate >= model.encoder.min_samples else None
    stream = model.stream(sample_rate=rate)
    bounds = [0, *sorted(c for c in cuts if c < len(y)), len(y)]
    for start, stop in itertools.pairwise(bounds):
        stream.push(y[start:stop])
    if whole is None:
        with pytest.raises(Exception, match="too short"):
            stream.finish()
        return
    result = stream.finish()
    np.testing.assert_allclose(result.window_scores, whole.window_scores, rtol=1e-4, atol=1e-5)
    assert result.verdict == whole.verdict or math.isclose(result.score, whole.threshold, rel_tol=1e-4)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 50_000),
    orig=st.sampled_from([8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000]),
    target=st.sampled_from([8000, 16000, 44100, 48000]),
)
def test_resampling_keeps_length_and_rate_consistent(n, orig, target):
    y = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    out = resample(y, orig_sr=orig, target_sr=target)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(out.shape[0] - n * target / orig) <= 0.5 + 1e-9  # rounded, never drifting
    assert np.isfinite(out).all()


@settings(max_examples=12, deadline=None, suppress_health_check=FIXTURES)
@given(n=st.integers(1, 3 * 48000), rate=st.sampled_from([8000, 22050, 44100, 48000]))
def test_loaded_files_have_the_resampled_length(tmp_path_factory, n, rate):
    path = tmp_path_factory.mktemp("rate") / "x.wav"
    y = np.random.default_rng(n).uniform(-0.5, 0.5, n).astype(np.float32)
    sf.write(path, y, rate, subtype="FLOAT")
    loaded = load_audio(path, sample_rate=RATE)
    assert abs(loaded.shape[0] - n * RATE / rate) <= 0.5 + 1e-9
    np.testing.assert_array_equal(loaded, soxr.resample(y, rate, RATE, quality="HQ").astype(np.float32))


# -- fuzz: decode and score mutated real files -------------------------------------------------------


def _seed_files() -> dict[str, bytes]:
    """Real audio in every container and sample format the runtime reads, 2.5 s each."""
    out = {}
    for i, clip in enumerate(DATA_CLIPS[:2]):
        samples, rate = sf.read(clip, dtype="float32", always_2d=True)
        cut = samples[: int(2.5 * rate), : 2 if i == 0 else 1]
        for fmt, subtype in [("WAV", "PCM_16"), ("WAV", "PCM_U8"), ("WAV", "PCM_24"), ("WAV", "FLOAT"),
                             ("FLAC", "PCM_16"), ("OGG", "VORBIS")]:
            buffer = io.BytesIO()
            sf.write(buffer, cut, rate, format=fmt, subtype=subtype)
            out[f"clip{i}_{subtype.lower()}.{fmt.lower()}"] = buffer.getvalue()
    return out


def _mutate(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    b = bytearray(data)
    how = rng.choice(["flip", "bytes", "header", "truncate", "insert", "delete", "duplicate", "splice", "ints"])
    if how == "flip":
        for pos in rng.integers(0, len(b), size=rng.integers(1, 32)):
            b[pos] ^= 1 << int(rng.integers(0, 8))
    elif how == "bytes":
        for pos in rng.integers(0, len(b), size=rng.integers(1, 16)):
            b[pos] = int(rng.integers(0, 256))
    elif how == "header":  # the first 128 bytes hold the sizes, rates and counts decoders trust
        for pos in rng.integers(0, min(128, len(b)), size=rng.integers(1, 6)):
            b[pos] = int(rng.choice([0x00, 0xFF, 0x7F, 0x80, int(rng.integers(0, 256))]))
    elif how == "truncate":
        del b[int(rng.integers(0, len(b))) :]
    elif how == "insert":
        pos = int(rng.integers(0, len(b)))
        b[pos:pos] = rng.integers(0, 256, size=int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()
    elif how == "delete":
        pos = int(rng.integers(0, len(b)))
        del b[pos : pos + int(rng.integers(1, 4096))]
    elif how == "duplicate":
        pos, size = int(rng.integers(0, len(b))), int(rng.integers(1, 8192))
        b[pos:pos] = b[pos : pos + size]
    elif how == "splice":  # the head of one file with a random tail
        b = b[: int(rng.integers(0, 256))] + bytearray(rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    else:  # a 32-bit size field somewhere in the header set to an extreme
        pos = int(rng.integers(0, max(1, min(64, len(b) - 4))))
        b[pos : pos + 4] = int(rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000])).to_bytes(4, "little")
    return bytes(b), str(how)


def run_fuzz(model, folder, *, seconds: float, seed: int) -> Counter:
    """Mutate seed files for ``seconds`` and score each through the batch path.

    Every case must end, within ``MAX_CASE_SECONDS``, in a scored row with a finite score or
    an error row from the package's own errors (not "unexpected", not "not enough memory").
    Returns counts of outcomes."""
    rng = np.random.default_rng(seed)
    seeds = _seed_files()
    names = sorted(seeds)
    outcomes: Counter = Counter()
    deadline = time.monotonic() + seconds
    case = 0
    while time.monotonic() < deadline:
        name = names[int(rng.integers(0, len(names)))]
        data, how = _mutate(seeds[name], rng)
        for _ in range(int(rng.integers(0, 3))):  # sometimes stack mutations
            data, more = _mutate(data, rng) if data else (data, "")
            how += "+" + more
        path = folder / f"case_{case:06d}{os.path.splitext(name)[1]}"
        path.write_bytes(data)
        started = time.monotonic()
        row = score_file(model, str(path), detector=None, threshold=None)
        took = time.monotonic() - started
        where = f"seed {seed}, case {case} ({name}, {how})"
        # 2.5 s of audio scores in milliseconds; seconds mean the file made the decoder or the
        # resampler do far more work than its size warrants (how the 1 Hz header was found).
        assert took < MAX_CASE_SECONDS, f"{where}: took {took:.1f} s"
        if row.verdict == "error":
            assert row.error and not row.error.startswith(("unexpected", "not enough memory")), f"{where}: {row.error}"
            outcomes["error: " + re.sub(r"\d+", "N", row.error.split(" (")[0].split(":")[0])] += 1
        else:
            assert row.score is not None and math.isfinite(row.score), f"{where}: score {row.score}"
            outcomes["scored" + ("" if not row.flags else " (" + ",".join(row.flags) + ")")] += 1
        path.unlink()
        case += 1
    outcomes["cases"] = case
    return outcomes


_SEEDS: dict[str, bytes] = {}


def _seed(name: str) -> bytes:
    if not _SEEDS:
        _SEEDS.update(_seed_files())
    return _SEEDS[name]


_SEED_NAMES = [
    f"clip{i}_{subtype}.{ext}"
    for i in range(2)
    for ext, subtype in [("wav", "pcm_16"), ("wav", "pcm_u8"), ("wav", "pcm_24"), ("wav", "float"),
                         ("flac", "pcm_16"), ("ogg", "vorbis")]
]

# One edit: (kind, where in the file as a fraction of its length, bytes).
_edits = st.tuples(
    st.sampled_from(["overwrite", "insert", "delete", "truncate"]),
    st.floats(0.0, 1.0) | st.floats(0.0, 0.002),  # anywhere, or in the header
    st.binary(min_size=1, max_size=16) | st.sampled_from([b"\x00" * 4, b"\xff" * 4, b"\xff\xff\xff\x7f", b"\x01\x00\x00\x00"]),
)


def _apply(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for kind, where, payload in edits:
        pos = min(int(where * len(b)), max(0, len(b) - 1))
        if kind == "overwrite":
            b[pos : pos + len(payload)] = payload
        elif kind == "insert":
            b[pos:pos] = payload
        elif kind == "delete":
            del b[pos : pos + 16 * len(payload)]
        else:
            del b[pos:]
    return bytes(b)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES)
@given(name=st.sampled_from(_SEED_NAMES), edits=st.lists(_edits, min_size=1, max_size=4))
def test_hypothesis_fuzz_of_decode_and_score(fan_model, tmp_path_factory, name, edits):
    """Hypothesis picks the edits, and shrinks a failure to the fewest, smallest ones."""
    path = tmp_path_factory.mktemp("hfuzz") / f"case.{name.rsplit('.', 1)[1]}"
    path.write_bytes(_apply(_seed(name), edits))
    started = time.monotonic()
    row = score_file(fan_model, str(path), detector=None, threshold=None)
    assert time.monotonic() - started < MAX_CASE_SECONDS
    if row.verdict == "error":
        assert row.error and not row.error.startswith(("unexpected", "not enough memory")), row.error
    else:
        assert row.score is not None and math.isfinite(row.score)


def test_fuzz_decode_and_score_mutated_real_files(fan_model, tmp_path):
    seconds = float(os.environ.get("SOUNDSENTRY_FUZZ_SECONDS", "20"))
    seed = int(os.environ.get("SOUNDSENTRY_FUZZ_SEED", "0"))
    outcomes = run_fuzz(fan_model, tmp_path, seconds=seconds, seed=seed)
    print(f"fuzz seed {seed}, {seconds:.0f} s: " + ", ".join(f"{k}: {v}" for k, v in outcomes.most_common()))
    assert outcomes["cases"] >= 20
    # The mutations keep some files decodable and break others: both paths were exercised.
    assert sum(v for k, v in outcomes.items() if k.startswith("scored")) > 0
    assert sum(v for k, v in outcomes.items() if k.startswith("error")) > 0
