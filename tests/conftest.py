"""Shared fixtures: real test clips, the shipped ``fan`` model, and skipping for optional extras."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import soundsentry

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
DATA_DIR = TESTS_DIR / "data"
EXAMPLES_DIR = REPO_ROOT / "examples"

# The studies (studies/) are not installed: they run from a checkout, so the tests import them from here.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

#: Every real clip in tests/data, as pytest parameters named by file.
DATA_CLIPS = sorted(DATA_DIR.glob("*.flac"))
MULTICHANNEL_CLIP = DATA_DIR / "abdul_id_06_normal.flac"
MONO_CLIP = DATA_DIR / "yos95_id_06_normal_id_06_00000012.flac"
ABNORMAL_CLIP = DATA_DIR / "yos95_id_06_anomaly_id_06_00000002.flac"
#: The fan bundle shipped before the EdgeL3 views bundles: the ``logmel-conv`` encoder kind with the
#: lof, ocsvm, knn and mahalanobis detectors. Old bundles must keep loading and scoring; tests of those
#: detectors and of the log-mel front end use it.
LOGMEL_BUNDLE = DATA_DIR / "bundles" / "fan-logmel"


def requires(module: str):
    """A skip marker for tests that need an optional module (the [train] extra: librosa, sklearn, onnx...)."""
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None, reason=f"needs {module} (pip install 'soundsentry[train]')"
    )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES_DIR


@pytest.fixture(scope="session")
def fan_model() -> soundsentry.Model:
    return soundsentry.load_model("fan")


@pytest.fixture(scope="session")
def fan_bundle_dir(fan_model) -> Path:
    return Path(fan_model.bundle.root)


@pytest.fixture(scope="session")
def logmel_model() -> soundsentry.Model:
    """The log-mel fixture bundle (:data:`LOGMEL_BUNDLE`)."""
    return soundsentry.load_model(LOGMEL_BUNDLE)


# -- the desktop app's tests (tests/test_gui*.py) ------------------------------------------------
# PySide6 is imported inside the fixtures, so the rest of the suite needs no [gui] extra.


@pytest.fixture
def qt_test_paths(qapp):
    """Settings, the log folder and enrolled models go to Qt's test locations, not the user's."""
    from PySide6.QtCore import QStandardPaths

    QStandardPaths.setTestModeEnabled(True)
    yield


@pytest.fixture
def settings(tmp_path):
    """A fresh settings file of the app (a QSettings), the shipped fan model last used."""
    from PySide6.QtCore import QSettings

    s = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    s.setValue("model", "fan")
    return s


@pytest.fixture
def logmel_settings(tmp_path):
    """The app last used the log-mel fixture bundle (four detectors; the shipped bundles have one)."""
    from PySide6.QtCore import QSettings

    s = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    s.setValue("bundles", [str(LOGMEL_BUNDLE)])
    s.setValue("model", str(LOGMEL_BUNDLE))
    return s
