"""Bad audio input: every kind gets a defined outcome, in the batch output and the CLI.

A file either scores (its score checked against an independent reference: the samples
the test wrote, or the stdlib ``wave`` module's decoding) or gets an ``error`` row whose
text says what is wrong; the batch finishes, exits 3 when a file failed, and prints no
traceback. Silence and clipping score but carry a flag. All files are made here from the
real clips in tests/data. docs/robustness.md lists the same outcomes for users.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import wave

import numpy as np
import pytest
import soundfile as sf
import soxr
from soundsentry.batch import score_file, score_files
from soundsentry.quality import signal_flags

from .conftest import MONO_CLIP, MULTICHANNEL_CLIP, REPO_ROOT

RATE = 16000


@pytest.fixture(scope="module")
def clip():
    y, rate = sf.read(MONO_CLIP, dtype="float32")
    assert rate == RATE
    return y


def _wav_bytes(y, rate=RATE, subtype="PCM_16"):
    buffer = io.BytesIO()
    sf.write(buffer, y, rate, subtype=subtype, format="WAV")
    return bytearray(buffer.getvalue())


def _pcm_reference(path):
    """Samples of an integer PCM WAV decoded by the standard library, not libsndfile."""
    with wave.open(os.fspath(path)) as w:
        width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width == 1:  # unsigned, offset 128
        ints = np.frombuffer(raw, np.uint8).astype(np.int32) - 128
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8  # sign-extend 24 bits
    else:
        ints = np.frombuffer(raw, f"<i{width}").astype(np.int64)
    return (ints / float(1 << (8 * width - 1))).reshape(-1, channels)[:, 0].astype(np.float32), rate


# Each case: make(folder, clip) -> path, and the expected outcome:
#   ("scores", flags, reference) where reference(path, clip) gives (samples, rate) to score
#                                 independently, or None when only finiteness is checked;
#   ("error", words) where every word must appear in the row's error text.


def _zero_bytes(d, y):
    p = d / "zero_bytes.wav"
    p.write_bytes(b"")
    return p


def _truncated_header(d, y):
    p = d / "truncated_header.wav"
    p.write_bytes(_wav_bytes(y)[:30])
    return p


def _data_length_claims_more(d, y):
    # The data chunk claims 4 GB; libsndfile clamps it to the bytes present.
    b = _wav_bytes(y)
    i = b.find(b"data")
    b[i + 4 : i + 8] = struct.pack("<I", 0xFFFFFFF0)
    p = d / "data_length_claims_more.wav"
    p.write_bytes(b)
    return p


def _data_length_claims_less(d, y):
    # The data chunk claims 1 s of a 10 s file: only what it claims is read, too short.
    b = _wav_bytes(y)
    i = b.find(b"data")
    b[i + 4 : i + 8] = struct.pack("<I", RATE * 2)
    p = d / "data_length_claims_less.wav"
    p.write_bytes(b)
    return p


def _flac_length_claims_huge(d, y):
    # STREAMINFO says 2^36 - 1 samples (12 days); the decoder must not allocate that.
    b = bytearray(MONO_CLIP.read_bytes())
    bits = int.from_bytes(b[18:26], "big") | ((1 << 36) - 1)
    b[18:26] = bits.to_bytes(8, "big")
    p = d / "flac_length_claims_huge.flac"
    p.write_bytes(b)
    return p


def _rate_1_hz(d, y):
    # Found by the fuzz: resampling 1 Hz to 16 kHz would turn 40,000 samples into 640 million.
    b = _wav_bytes(y)
    b[24:28] = struct.pack("<I", 1)  # the fmt chunk's sample rate
    b[28:32] = struct.pack("<I", 2)  # and byte rate
    p = d / "rate_1_hz.wav"
    p.write_bytes(b)
    return p


def _random_bytes(d, y):
    p = d / "random_bytes.wav"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    return p


def _text_file(d, y):
    p = d / "text_file.wav"
    p.write_text("time,rpm\n" + "0.1,1500\n" * 300)
    return p


def _directory(d, y):
    p = d / "x.wav"
    p.mkdir()
    return p


def _fifo(d, y):
    p = d / "fifo.wav"
    os.mkfifo(p)  # opening it would wait forever for a writer
    return p


def _one_sample(d, y):
    p = d / "one_sample.wav"
    sf.write(p, y[:1], RATE, subtype="PCM_16")
    return p


def _shorter_than_a_window(d, y):
    p = d / "shorter_than_a_window.wav"
    sf.write(p, y[:RATE], RATE, subtype="PCM_16")  # 1 s: under the views kind's 1.108 s window (and log-mel's 2.02 s)
    return p


def _silence(d, y):
    p = d / "silence.wav"
    sf.write(p, np.zeros(10 * RATE, np.float32), RATE, subtype="PCM_16")
    return p


def _clipping(d, y):
    p = d / "clipping.wav"
    sf.write(p, np.clip(y * 60.0, -1.0, 1.0), RATE, subtype="PCM_16")
    return p


def _nan(d, y):
    p = d / "nan.wav"
    z = y.copy()
    z[5000] = np.nan
    sf.write(p, z, RATE, subtype="FLOAT")
    return p


def _inf(d, y):
    p = d / "inf.wav"
    z = y.copy()
    z[-3] = -np.inf
    sf.write(p, z, RATE, subtype="FLOAT")
    return p


def _pcm_u8(d, y):
    p = d / "pcm_u8.wav"
    sf.write(p, y * 8, RATE, subtype="PCM_U8")  # louder, or 8 bits would keep little of a quiet fan
    return p


def _pcm_24(d, y):
    p = d / "pcm_24.wav"
    sf.write(p, y, RATE, subtype="PCM_24")
    return p


def _float32(d, y):
    p = d / "float32.wav"
    sf.write(p, y, RATE, subtype="FLOAT")
    return p


def _rate_8k(d, y):
    p = d / "rate_8k.wav"
    sf.write(p, soxr.resample(y, RATE, 8000), 8000, subtype="FLOAT")
    return p


def _rate_96k(d, y):
    p = d / "rate_96k.wav"
    sf.write(p, soxr.resample(y, RATE, 96000), 96000, subtype="FLOAT")
    return p


def _eight_channels(d, y):
    # Channel 0 is the mono clip; the others are channels of another real recording.
    other, _ = sf.read(MULTICHANNEL_CLIP, dtype="float32")
    z = np.concatenate([y[:, None], other[: len(y), 1:]], axis=1)
    assert z.shape[1] == 8
    p = d / "eight_channels.wav"
    sf.write(p, z, RATE, subtype="FLOAT")
    return p


def _float_samples_written(path, y):
    samples, rate = sf.read(path, dtype="float32")  # a float WAV stores the floats exactly
    return (samples[:, 0] if samples.ndim == 2 else samples), rate


def _clip_itself(path, y):
    return y, RATE


def _resampled_written(rate):
    def reference(path, y):
        return soxr.resample(y, RATE, rate), rate

    return reference


CASES = {
    "zero_bytes": (_zero_bytes, ("error", ["empty", "0 bytes"])),
    "truncated_header": (_truncated_header, ("error", ["cannot decode audio"])),
    "data_length_claims_more": (_data_length_claims_more, ("scores", (), lambda p, y: _pcm_reference(p))),
    "data_length_claims_less": (_data_length_claims_less, ("error", ["too short"])),
    "flac_length_claims_huge": (_flac_length_claims_huge, ("error", ["cannot decode audio"])),
    "rate_1_hz": (_rate_1_hz, ("error", ["sample rate 1 Hz is outside"])),
    "random_bytes": (_random_bytes, ("error", ["cannot decode audio"])),
    "text_file": (_text_file, ("error", ["cannot decode audio"])),
    "directory": (_directory, ("error", ["is a folder"])),
    "fifo": (_fifo, ("error", ["not a regular file"])),
    "one_sample": (_one_sample, ("error", ["too short", "0.00 s"])),
    "shorter_than_a_window": (_shorter_than_a_window, ("error", ["too short", "1.00 s"])),
    "silence": (_silence, ("scores", ("silent",), lambda p, y: _pcm_reference(p))),
    "clipping": (_clipping, ("scores", ("clipped",), lambda p, y: _pcm_reference(p))),
    "nan": (_nan, ("error", ["NaN or infinite"])),
    "inf": (_inf, ("error", ["NaN or infinite"])),
    "pcm_u8": (_pcm_u8, ("scores", (), lambda p, y: _pcm_reference(p))),
    "pcm_24": (_pcm_24, ("scores", (), lambda p, y: _pcm_reference(p))),
    "float32": (_float32, ("scores", (), _clip_itself)),
    "rate_8k": (_rate_8k, ("scores", (), _resampled_written(8000))),
    "rate_96k": (_rate_96k, ("scores", (), _resampled_written(96000))),
    "eight_channels": (_eight_channels, ("scores", (), _clip_itself)),
}


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory, clip):
    folder = tmp_path_factory.mktemp("bad_input")
    paths = {name: make(folder, clip) for name, (make, _) in CASES.items()}
    return folder, paths


@pytest.mark.parametrize("name", list(CASES))
def test_each_kind_of_input_has_its_defined_outcome(bad_folder, clip, fan_model, name):
    _, paths = bad_folder
    path = paths[name]
    kind, *expected = CASES[name][1]
    row = score_file(fan_model, str(path), detector=None, threshold=None)
    assert row.path == str(path)
    if kind == "error":
        (words,) = expected
        assert row.verdict == "error" and row.score is None and row.flags == ()
        for word in words:
            assert word in row.error, row.error
        return
    flags, reference = expected
    assert row.error == "" and row.verdict in ("normal", "abnormal"), row.error
    assert row.flags == flags
    assert math.isfinite(row.score)
    samples, rate = reference(path, clip)
    want = fan_model.score(samples, sample_rate=rate).score
    assert row.score == pytest.approx(want, rel=1e-4)


def test_eight_channels_score_exactly_like_channel_0(bad_folder, fan_model):
    _, paths = bad_folder
    row = score_file(fan_model, str(paths["eight_channels"]), detector=None, threshold=None)
    assert row.score == pytest.approx(fan_model.score(MONO_CLIP).score, rel=1e-6)


@pytest.mark.parametrize("which", ["logmel_model", "fan_model"])
def test_96k_scores_like_the_16k_original(request, bad_folder, which):
    """Resampling up and back down keeps the band the model hears: the score barely moves."""
    model = request.getfixturevalue(which)
    _, paths = bad_folder
    row = score_file(model, str(paths["rate_96k"]), detector=None, threshold=None)
    result, original = model.score(paths["rate_96k"]), model.score(MONO_CLIP)
    assert row.score == pytest.approx(result.score, rel=1e-9)
    if not result.evidence:  # the log-mel kind: one score
        assert row.score == pytest.approx(original.score, rel=0.02)
        return
    # The views kind: EdgeL3 hears 0-4 kHz and the level is broadband; they barely move.
    ratios, want = ({e.view: e.ratio for e in r.evidence} for r in (result, original))
    for view in ("embedding", "events", "level"):
        assert ratios[view] == pytest.approx(want[view], rel=0.02), view
    # The shape view's bands reach 8 kHz, the 16 kHz Nyquist: every band below 7.5 kHz is unchanged; the
    # top one (7.3-8 kHz) lies in the 96 -> 16 kHz resampler's transition band and loses about 4 dB.
    from soundsentry.edgel3_encoder import display_band_edges_hz

    below = display_band_edges_hz()[:, 1] <= 7500
    bands = [model.display(model.features(model.load(p))).mean(axis=1) for p in (paths["rate_96k"], MONO_CLIP)]
    np.testing.assert_allclose(bands[0][below], bands[1][below], atol=0.01)


def test_cli_batch_over_every_bad_kind_finishes_without_traceback(bad_folder, tmp_path):
    folder, paths = bad_folder
    out = tmp_path / "rows.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "soundsentry", "score", str(folder), "--format", "csv", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 3, proc.stderr  # files failed, the others scored
    assert "Traceback" not in proc.stderr
    rows = {r["path"]: r for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))}
    # The folder is searched for audio suffixes: the directory named x.wav is not a file in it.
    expected = {str(p) for name, p in paths.items() if name != "directory"}
    assert set(rows) == expected
    for name, path in paths.items():
        if name == "directory":
            continue
        row, (kind, *_) = rows[str(path)], CASES[name][1]
        assert (row["verdict"] == "error") == (kind == "error"), (name, row)
        if kind == "error":
            assert f"{path}: {row['error']}" in proc.stderr  # the warning names file and cause
        else:
            assert row["flags"] == ";".join(CASES[name][1][1])
    n_errors = sum(CASES[n][1][0] == "error" for n in paths if n != "directory")
    assert f"{len(expected)} files:" in proc.stderr and f"{n_errors} failed" in proc.stderr


def test_directory_named_as_audio_given_explicitly(bad_folder, capsys):
    """On the command line a folder is searched, whatever its name; an empty one has nothing to score."""
    from soundsentry.cli import main

    _, paths = bad_folder
    code = main(["score", str(paths["directory"]), "--format", "csv"])
    out, err = capsys.readouterr()
    assert out == "" and "no audio files found" in err
    assert code == 3


def test_file_that_disappears_mid_batch(tmp_path, fan_model):
    from soundsentry.batch import MAX_DEFAULT_THREADS

    # Past what the batch reads ahead (two files per thread), so it is gone when its turn comes.
    n = 2 * MAX_DEFAULT_THREADS + 4
    paths = [tmp_path / f"{i:02d}.flac" for i in range(n)]
    for p in paths:
        shutil.copy(MONO_CLIP, p)
    rows = []
    for row in score_files(fan_model, [str(p) for p in paths]):
        rows.append(row)
        if len(rows) == 1:
            paths[-2].unlink()  # deleted after the batch listed it
    assert [r.verdict == "error" for r in rows] == [False] * (n - 2) + [True, False]
    assert rows[-2].error == "file not found"
    assert rows[0].score == rows[-1].score


def _as_unprivileged(fn):
    """Run fn() as a user that file permissions apply to. Root ignores them, so as root
    fork, drop to uid 65534 (nobody) in the child and send the result back."""
    if os.geteuid() != 0:
        return fn()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.setgid(65534)
            os.setuid(65534)
            os.write(write_end, repr(fn()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        result = fh.read().decode()
    os.waitpid(pid, 0)
    return eval(result)  # the repr of a tuple of two str, written by our own child


def test_unreadable_file_is_permission_denied(fan_model):
    folder = tempfile.mkdtemp()
    try:
        os.chmod(folder, 0o755)
        path = os.path.join(folder, "locked.flac")
        shutil.copy(MONO_CLIP, path)
        os.chmod(path, 0o000)

        def attempt():
            row = score_file(fan_model, path, detector=None, threshold=None)
            return (row.verdict, row.error)

        assert _as_unprivileged(attempt) == ("error", "permission denied")
    finally:
        shutil.rmtree(folder)


def test_very_long_file_names(tmp_path, fan_model):
    longest = tmp_path / ("n" * 251 + ".wav")  # 255 bytes: the longest name Linux allows
    shutil.copy(MONO_CLIP, longest)
    row = score_file(fan_model, str(longest), detector=None, threshold=None)
    assert row.error == "" and row.score == pytest.approx(fan_model.score(MONO_CLIP).score)
    too_long = str(tmp_path / ("n" * 300 + ".wav"))
    row = score_file(fan_model, too_long, detector=None, threshold=None)
    assert row.verdict == "error" and "File name too long" in row.error


def test_non_utf8_file_name_round_trips_through_csv_and_resume(tmp_path):
    raw_name = b"pump_\xff\xfe_caf\xe9.wav"  # Latin-1 bytes: not valid UTF-8
    folder = os.fsencode(tmp_path)
    with open(os.path.join(folder, raw_name), "wb") as fh:
        fh.write(_wav_bytes(sf.read(MONO_CLIP, dtype="float32")[0]))
    shutil.copy(MONO_CLIP, tmp_path / "plain.flac")
    out = tmp_path / "rows.csv"
    command = [sys.executable, "-m", "soundsentry", "score", str(tmp_path), "--format", "csv", "-o", str(out)]
    proc = subprocess.run(command, capture_output=True, timeout=120, cwd=REPO_ROOT)
    assert proc.returncode in (0, 1), proc.stderr
    data = out.read_bytes()
    assert os.path.join(folder, raw_name) in data  # written back byte for byte
    # Nothing left to do on resume: the odd name matched its row.
    proc = subprocess.run([*command, "--resume"], capture_output=True, timeout=120, cwd=REPO_ROOT)
    assert proc.returncode in (0, 1) and b"Traceback" not in proc.stderr
    assert out.read_bytes() == data
    # To stdout, too, the name is printed as its bytes instead of crashing the encoder.
    proc = subprocess.run(command[:-2], capture_output=True, timeout=120, cwd=REPO_ROOT)
    assert proc.returncode in (0, 1) and b"Traceback" not in proc.stderr
    assert os.path.join(folder, raw_name) in proc.stdout


def test_file_decoding_longer_than_its_header_says_is_streamed(tmp_path, fan_model, monkeypatch):
    """A file whose data outlasts the whole-file limit (its header said less, or nothing) is
    scored block by block instead of being held in memory. The limit is lowered to 5 s here so a
    10 s real clip crosses it; the streamed scores equal whole-file scoring within rounding."""
    import soundsentry.scoring
    import soundsentry.streaming

    path = tmp_path / "clip.flac"
    shutil.copy(MONO_CLIP, path)
    whole = score_file(fan_model, str(path), detector=None, threshold=None)
    monkeypatch.setattr(soundsentry.scoring, "WHOLE_DECODE_MAX_SECONDS", 5.0)
    streamed = []
    real = soundsentry.streaming.score_file_streamed
    monkeypatch.setattr(
        soundsentry.streaming, "score_file_streamed", lambda *a, **k: streamed.append(a[1]) or real(*a, **k)
    )
    row = score_file(fan_model, str(path), detector=None, threshold=None)
    assert streamed == [str(path)]
    assert row.error == "" and row.flags == whole.flags
    assert row.score == pytest.approx(whole.score, rel=1e-4)


@pytest.mark.slow
def test_one_hour_recording_scores(tmp_path, clip, fan_model):
    """An hour of the real clip, repeated: it decodes and scores like the clip it repeats."""
    path = tmp_path / "one_hour.wav"
    sf.write(path, np.tile(clip, 360), RATE, subtype="PCM_16")
    # The views clip score is a ratio to the threshold (about 1 at the boundary): a relative tolerance means something.
    row = score_file(fan_model, str(path), detector=None, threshold=None)
    assert row.error == "" and row.flags == ()
    # Windows across the seams of the repeats are new material; they move the clip statistics a little.
    assert row.score == pytest.approx(fan_model.score(clip).score, rel=0.05)


# -- the flags themselves --------------------------------------------------------------------


def test_real_clips_carry_no_flags():
    for path in sorted(MONO_CLIP.parent.glob("*.flac")):
        y, _ = sf.read(path, dtype="float32", always_2d=True)
        assert signal_flags(y[:, 0]) == (), path.name


def test_flags_at_their_thresholds(clip):
    scale = 10 ** (-70 / 20) / float(np.sqrt(np.mean(clip.astype(np.float64) ** 2)))
    assert signal_flags(clip * scale * 1.01) == ()  # just above -70 dBFS RMS
    assert signal_flags(clip * scale * 0.99) == ("silent",)
    assert signal_flags(np.zeros(100, np.float32)) == ("silent",)
    z = clip.copy()
    z[:10] = 1.0  # a few samples at full scale are peaks, not clipping
    assert signal_flags(z) == ()
    z[: len(z) // 1000 + 1] = -1.0  # one in a thousand pinned at the limit
    assert signal_flags(z) == ("clipped",)
