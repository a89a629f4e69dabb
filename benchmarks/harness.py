"""Measuring helpers: child processes with their own peak memory, statistics, test material."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ProcResult:
    seconds: float
    peak_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_process(cmd: list[str], *, env: dict | None = None, cwd: str | os.PathLike | None = None) -> ProcResult:
    """Run ``cmd`` to completion; wall time from just before the fork to its exit, and its own peak RSS.

    ``cmd`` is started by a small launcher (:mod:`benchmarks.spawn`) that reports the child's own
    ``ru_maxrss`` from ``os.wait4``: forked straight from this process, the child would inherit this
    process's peak (TensorFlow and models loaded by the in-process sections) across ``exec``.
    Worker processes the child starts are not counted.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "spawn.json"
        # Started by its file path (standard library only): the command gets ``env`` unchanged.
        launcher = [sys.executable, str(Path(__file__).with_name("spawn.py")), str(report), *cmd]
        proc = subprocess.run(launcher, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        if proc.returncode != 0 or not report.is_file():
            raise RuntimeError(f"the benchmark launcher failed (exit {proc.returncode}) for {cmd[:3]}")
        measured = json.loads(report.read_text())
        out.seek(0)
        err.seek(0)
        return ProcResult(measured["seconds"], measured["peak_kb"] / 1024.0, measured["returncode"], out.read(), err.read())


def count_multichannel(clips: list[str]) -> int:
    """How many of ``clips`` hold more than one channel (all of which a decoder must decode)."""
    import soundfile as sf

    return sum(sf.info(c).channels > 1 for c in clips)


def child_env(**extra: str) -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def stats(values: list[float]) -> dict:
    """Median, min, max and count of repeated measurements."""
    v = [float(x) for x in values]
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v), "values": v}


def fmt_spread(s: dict, unit: str = "", digits: int = 3) -> str:
    """``median (min-max, n=N)``, the way every figure is written in the report."""
    f = f"{{:.{digits}g}}"
    if s["n"] == 1:
        return f"{f.format(s['median'])}{unit} (n=1)"
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}–{f.format(s['max'])}, n={s['n']})"


def link_folder(clips: list[str], n: int, folder: Path) -> Path:
    """A folder of ``n`` files that are the real ``clips`` repeated, as symbolic links (no copies)."""
    folder.mkdir(parents=True, exist_ok=True)
    width = len(str(n))
    for i in range(n):
        src = clips[i % len(clips)]
        os.symlink(src, folder / f"{i:0{width}d}_{Path(src).name}")
    return folder


def write_long_recording(clips: list[str], seconds: float, path: Path, *, sample_rate: int = 16000) -> Path:
    """A mono 16-bit FLAC of ``seconds``: channel 0 of the real clips end to end, written in blocks.

    The clips are decoded once; the file is written piece by piece so building an hour needs
    no hour of samples in memory.
    """
    import soundfile as sf
    from soundsentry.audio import load_audio

    pieces = [load_audio(c, sample_rate=sample_rate) for c in clips]
    total = int(seconds * sample_rate)
    written = 0
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16", format="FLAC") as fh:
        i = 0
        while written < total:
            piece = pieces[i % len(pieces)][: total - written]
            fh.write(np.clip(piece, -1.0, 1.0 - 2**-15))
            written += piece.shape[0]
            i += 1
    return path


def machine_description() -> dict:
    import platform

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    versions = {}
    for name in ("numpy", "onnxruntime", "soundfile", "soxr", "tensorflow", "keras", "librosa", "scikit-learn"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "versions": versions,
        "load_average": os.getloadavg(),
    }


def dir_size_mb(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            fp = os.path.join(root, name)
            if not os.path.islink(fp):
                total += os.path.getsize(fp)
    return total / 1024 / 1024
