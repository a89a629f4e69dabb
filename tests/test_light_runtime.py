"""The runtime works without the [train] and [gui] extras: no TensorFlow, scikit-learn, librosa, SciPy..."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from .conftest import EXAMPLES_DIR, LOGMEL_BUNDLE, MONO_CLIP, REPO_ROOT

BLOCKED = ["tensorflow", "keras", "tf_keras", "sklearn", "librosa", "scipy", "numba", "PySide6", "tf2onnx", "skl2onnx"]
# The optional extras of watch, export-onnx and --dask: the plain runtime must not need them either.
BLOCKED += ["onnx", "watchdog", "dask", "distributed"]

SCRIPT = textwrap.dedent(
    """
    import contextlib, io, json, sys

    BLOCKED = {blocked!r}
    attempts = []

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                attempts.append(name)
                raise ImportError(f"{{name}} is blocked: the light runtime must not need it")
            return None

    sys.meta_path.insert(0, Blocker())

    import soundsentry
    import soundsentry.cli

    model = soundsentry.load_model("fan")
    result = model.score({clip!r})
    stream = model.stream()
    stream.push(model.load({clip!r}))
    streamed = stream.finish()
    old = soundsentry.load_model({logmel!r}).score({clip!r})  # a log-mel bundle of before the views bundles
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = soundsentry.cli.main(["score", {examples!r}, "--format", "csv"])
    print(json.dumps({{
        "verdict": result.verdict,
        "score": result.score,
        "streamed": streamed.score,
        "old_verdict": old.verdict,
        "old_detector": old.detector,
        "cli_code": code,
        "cli_out": out.getvalue(),
        "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
        "attempts": attempts,
    }}))
    """
)


def test_runtime_scores_without_heavy_dependencies(tmp_path):
    script = SCRIPT.format(blocked=BLOCKED, clip=str(MONO_CLIP), examples=str(EXAMPLES_DIR), logmel=str(LOGMEL_BUNDLE))
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["verdict"] in ("normal", "abnormal")
    assert report["streamed"] == report["score"]
    assert report["old_verdict"] in ("normal", "abnormal") and report["old_detector"] != "views"
    assert report["loaded"] == []
    lines = report["cli_out"].splitlines()
    assert lines[0] == "path,score,verdict,threshold,detector,model,flags,error,explanation"
    assert len(lines) == 1 + len(list(EXAMPLES_DIR.glob("*.flac")))
    assert all(",error," not in line for line in lines[1:])
    assert report["cli_code"] in (0, 1)


def test_blocker_really_blocks(tmp_path):
    """The harness itself works: importing a blocked module fails in the subprocess."""
    script = SCRIPT.split("import soundsentry\n")[0] + "import scipy\n"
    proc = subprocess.run(
        [sys.executable, "-c", script.format(blocked=BLOCKED)], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "scipy is blocked" in proc.stderr
