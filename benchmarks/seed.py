"""The seed project's inference path, rebuilt from its published description for benchmarking.

What the seed did per recording (and what is rebuilt here):

1. ``librosa.load(path, sr=16000, mono=True)``: whole-file decode, mono mixdown of all channels;
2. ``librosa.feature.melspectrogram`` (n_fft 1024, hop 512, 128 mels), ``power_to_db(ref=np.max)``;
3. pad (or cut) to 320 frames, scale with the training set's global min and max to [0, 1];
4. a conv encoder, 16-32-64-64 filters of 3x3 with 2x2 max pooling after each, input
   (128, 320, 1), latent (8, 20, 64) flattened to 10,240 values, run with Keras or TFLite;
5. ``sklearn.neighbors.LocalOutlierFactor(n_neighbors=5, novelty=True)`` on the flattened latent.

The weights are **random** (Keras' default Glorot-uniform initialisation, seed 0), not trained:
the seed's trained weights were never published, and the time and memory of the path do not
depend on the values of its weights. The LOF is fitted on the random-weight latents of real
normal clips, so its neighbour search has the real shape and size. Scores from this path mean
nothing; only its cost is measured.

Needs the ``[train]`` extra (TensorFlow, librosa, scikit-learn). Run as a command it is the
seed's one-shot CLI: ``python -m benchmarks.seed score --model-dir DIR FILE...`` imports
TensorFlow, loads the encoder and the LOF, and prints one verdict per file.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 1024
HOP = 512
N_MELS = 128
FRAMES = 320
FILTERS = (16, 32, 64, 64)
N_NEIGHBORS = 5

__all__ = ["SeedPath", "build_seed_model", "seed_available"]


def seed_available() -> str | None:
    """``None`` if the seed's packages are importable, else a sentence saying what is missing."""
    from importlib.util import find_spec

    missing = [name for name in ("tensorflow", "librosa", "sklearn") if find_spec(name) is None]
    if missing:
        return f"the seed baseline needs {', '.join(missing)} (pip install 'soundsentry[train]')"
    return None


def _quiet_tensorflow():
    # Only the log level: the seed ran TensorFlow with its default (oneDNN) kernels.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return tf


def build_encoder(seed: int = 0):
    """The seed's conv encoder with random weights, input (128, 320, 1), output (8, 20, 64)."""
    tf = _quiet_tensorflow()
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((N_MELS, FRAMES, 1))
    x = inputs
    for f in FILTERS:
        x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    del tf
    return keras.Model(inputs, x, name="seed_encoder")


def load_mono(path: str | os.PathLike[str]) -> np.ndarray:
    """Step 1: librosa's whole-file decode with mono mixdown."""
    import librosa

    y, _ = librosa.load(path, sr=SAMPLE_RATE, mono=True)
    return y


def features(y: np.ndarray) -> np.ndarray:
    """Steps 2-3 before scaling: dB mel spectrogram (ref=max), padded or cut to 320 frames."""
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    db = librosa.power_to_db(mel, ref=np.max)
    if db.shape[1] < FRAMES:
        db = np.pad(db, ((0, 0), (0, FRAMES - db.shape[1])), mode="constant", constant_values=db.min())
    return db[:, :FRAMES].astype(np.float32)


def segments(y: np.ndarray) -> np.ndarray:
    """A long recording as the seed would have to score it: consecutive 320-frame spectrograms.

    Returns shape (n_segments, 128, 320); the whole recording's spectrogram is computed first.
    """
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    db = librosa.power_to_db(mel, ref=np.max).astype(np.float32)
    n = max(1, db.shape[1] // FRAMES)
    db = db[:, : n * FRAMES] if db.shape[1] >= FRAMES else np.pad(db, ((0, 0), (0, FRAMES - db.shape[1])))
    return db.reshape(N_MELS, n, FRAMES).transpose(1, 0, 2)


class SeedPath:
    """The seed's model loaded from a folder written by :func:`build_seed_model`.

    ``runtime="keras"`` calls the Keras model directly (no ``predict`` overhead: its best
    case); ``runtime="tflite"`` runs the converted flat buffer with ``tf.lite.Interpreter``.
    """

    def __init__(self, model_dir: str | os.PathLike[str], *, runtime: str = "keras") -> None:
        tf = _quiet_tensorflow()
        model_dir = Path(model_dir)
        meta = json.loads((model_dir / "seed.json").read_text())
        self.gmin, self.gmax = float(meta["min"]), float(meta["max"])
        self.runtime = runtime
        if runtime == "keras":
            import keras

            self._keras = keras.models.load_model(model_dir / "encoder.keras", compile=False)
        elif runtime == "tflite":
            self._interp = tf.lite.Interpreter(model_path=str(model_dir / "encoder.tflite"))
            self._interp.allocate_tensors()
            self._in = self._interp.get_input_details()[0]["index"]
            self._out = self._interp.get_output_details()[0]["index"]
        else:
            raise ValueError(f"unknown runtime {runtime!r}")
        with open(model_dir / "lof.pkl", "rb") as fh:
            self.lof = pickle.load(fh)

    def scale(self, db: np.ndarray) -> np.ndarray:
        return ((db - self.gmin) / (self.gmax - self.gmin)).astype(np.float32)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Flattened latents of scaled spectrograms (n, 128, 320) -> (n, 10240)."""
        x = x[..., None]
        if self.runtime == "keras":
            out = self._keras(x, training=False).numpy()
        else:
            out = []
            for one in x:
                self._interp.set_tensor(self._in, one[None])
                self._interp.invoke()
                out.append(self._interp.get_tensor(self._out))
            out = np.concatenate(out)
        return out.reshape(out.shape[0], -1)

    def detect(self, latents: np.ndarray) -> np.ndarray:
        """LOF of each latent (higher = more anomalous)."""
        return -self.lof.score_samples(latents)

    def score_file(self, path: str | os.PathLike[str]) -> float:
        return float(self.detect(self.encode(self.scale(features(load_mono(path))[None])))[0])

    def score_long(self, path: str | os.PathLike[str]) -> float:
        """A long recording: whole decode, whole spectrogram, 320-frame segments, mean LOF."""
        return float(self.detect(self.encode(self.scale(segments(load_mono(path))))).mean())


def build_seed_model(model_dir: str | os.PathLike[str], normal_clips: list[str], *, seed: int = 0) -> Path:
    """Write the seed's random-weight encoder (Keras and TFLite), scaling and a fitted LOF to ``model_dir``."""
    tf = _quiet_tensorflow()
    from sklearn.neighbors import LocalOutlierFactor

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    encoder = build_encoder(seed)
    encoder.save(model_dir / "encoder.keras")
    (model_dir / "encoder.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(encoder).convert())
    db = np.stack([features(load_mono(p)) for p in normal_clips])
    gmin, gmax = float(db.min()), float(db.max())
    x = ((db - gmin) / (gmax - gmin)).astype(np.float32)[..., None]
    latents = encoder(x, training=False).numpy().reshape(len(x), -1)
    lof = LocalOutlierFactor(n_neighbors=min(N_NEIGHBORS, len(x) - 1), novelty=True).fit(latents)
    with open(model_dir / "lof.pkl", "wb") as fh:
        pickle.dump(lof, fh)
    (model_dir / "seed.json").write_text(
        json.dumps({"min": gmin, "max": gmax, "weights": f"random (Glorot uniform, seed {seed})", "n_fit": len(x)})
    )
    return model_dir


def bench(model_dir, clips: list[str], runtime: str, repeats: int, *, with_ours: bool = False) -> dict:
    """Warm timings in this process: the whole per-file loop, and each stage over all clips.

    Returns seconds per repeat: ``loop`` (score every clip one by one, as the seed's loop did),
    and ``decode``, ``features`` (dB mel, padding, scaling), ``encoder``, ``detector``. With
    ``with_ours``, SoundSentry's stages are timed in the same process after each repeat
    (``ours_seconds``), so both sides meet the same load.
    """
    clips = [c for c in clips if c]
    seed = SeedPath(model_dir, runtime=runtime)
    seed.score_file(clips[0])  # warm: first-call tracing and allocation are not the steady state
    out: dict[str, list[float]] = {k: [] for k in ("loop", "decode", "features", "encoder", "detector")}
    ours_out: dict[str, list[float]] = {k: [] for k in out}
    if with_ours:
        import soundsentry

        from benchmarks.ours import stage_split

        model = soundsentry.load_model("fan")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for c in clips:
            seed.score_file(c)
        out["loop"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ys = [load_mono(c) for c in clips]
        t1 = time.perf_counter()
        xs = [seed.scale(features(y))[None] for y in ys]
        t2 = time.perf_counter()
        latents = [seed.encode(x) for x in xs]
        t3 = time.perf_counter()
        for z in latents:
            seed.detect(z)
        t4 = time.perf_counter()
        for key, value in zip(("decode", "features", "encoder", "detector"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=False):
            out[key].append(value)
        if with_ours:
            for key, values in stage_split(model, clips, 1).items():
                ours_out[key].extend(values)
    result = {"n_clips": len(clips), "runtime": runtime, "seconds": out}
    if with_ours:
        result["ours_seconds"] = ours_out
    return result


def main(argv: list[str] | None = None) -> int:
    """The seed's one-shot CLI: ``score --model-dir DIR FILE...`` prints ``path score verdict`` per file."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.seed")
    sub = parser.add_subparsers(dest="command", required=True)
    score = sub.add_parser("score")
    score.add_argument("--model-dir", required=True)
    score.add_argument("--runtime", choices=["keras", "tflite"], default="keras")
    score.add_argument("--long", action="store_true", help="score each file as one long recording")
    score.add_argument("paths", nargs="+")
    timing = sub.add_parser("bench", help="warm in-process timings, printed as JSON")
    timing.add_argument("--model-dir", required=True)
    timing.add_argument("--runtime", choices=["keras", "tflite"], default="keras")
    timing.add_argument("--repeats", type=int, default=3)
    timing.add_argument("--with-ours", action="store_true", help="also time SoundSentry's stages, interleaved")
    timing.add_argument("list", help="file with one clip path per line")
    build = sub.add_parser("build")
    build.add_argument("--model-dir", required=True)
    build.add_argument("clips", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "build":
        build_seed_model(args.model_dir, args.clips)
        return 0
    if args.command == "bench":
        print(json.dumps(bench(args.model_dir, Path(args.list).read_text().split("\n"), args.runtime, args.repeats,
                               with_ours=args.with_ours)))
        return 0
    seed = SeedPath(args.model_dir, runtime=args.runtime)
    paths = []
    for p in args.paths:
        if os.path.isdir(p):
            paths.extend(sorted(str(q) for q in Path(p).rglob("*") if q.suffix.lower() in (".wav", ".flac", ".ogg")))
        else:
            paths.append(p)
    started = time.perf_counter()
    for p in paths:
        s = seed.score_long(p) if args.long else seed.score_file(p)
        # The seed's LOF (novelty) calls a point an outlier when its LOF exceeds -offset_ (1.5).
        verdict = "abnormal" if s > -seed.lof.offset_ else "normal"
        print(f"{p}\t{s:.4f}\t{verdict}", flush=True)
    print(f"scored {len(paths)} files in {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
