"""Reference scores of the log-mel bundle on the real clips, to check refactors change no score.

Scores every ``*.flac`` under ``tests/data`` and ``examples`` with every detector of the bundle in
``tests/data/bundles/fan-logmel`` (the ``fan`` bundle shipped before the EdgeL3 views bundles, kept
as the fixture of the ``logmel-conv`` encoder kind: old bundles must keep loading and scoring) and
stores the window scores and clip scores in ``tests/data/reference_scores.json`` (read by
``tests/test_reference_scores.py``). The stored scores were computed by this script at commit
f15203f, before the architecture refactor of issue 13, when the bundle was ``models/fan``. Redo only
when a change of scores is intended::

    python tests/data/make_reference_scores.py
"""

from __future__ import annotations

import json
from pathlib import Path

import soundsentry

DATA_DIR = Path(__file__).resolve().parent
REPO_ROOT = DATA_DIR.parent.parent
OUT = DATA_DIR / "reference_scores.json"
#: Fixture bundles under tests/data/bundles whose scores are pinned.
BUNDLES = ("fan-logmel",)


def reference_clips() -> list[Path]:
    """The real clips scored, in a fixed order."""
    return sorted(DATA_DIR.rglob("*.flac")) + sorted((REPO_ROOT / "examples").glob("*.flac"))


def compute() -> dict[str, dict[str, dict[str, dict[str, object]]]]:
    """``{bundle: {detector: {clip (repo-relative): {"score": float, "window_scores": [float]}}}}``."""
    out: dict[str, dict[str, dict[str, dict[str, object]]]] = {}
    clips = reference_clips()
    for name in BUNDLES:
        model = soundsentry.load_model(DATA_DIR / "bundles" / name)
        out[name] = {}
        for detector in model.detectors:
            rows = {}
            for clip in clips:
                result = model.score(clip, detector=detector)
                rows[clip.relative_to(REPO_ROOT).as_posix()] = {
                    "score": float(result.score),
                    "window_scores": [float(s) for s in result.window_scores],
                }
            out[name][detector] = rows
    return out


if __name__ == "__main__":
    OUT.write_text(json.dumps(compute(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")
