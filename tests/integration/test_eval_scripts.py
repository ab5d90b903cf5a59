"""The fitting and training scripts in eval/ still start: they import the package as it is laid out now."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize(
    "script", ["fit_scoring.py", "sentence_vectors.py", "train_reader.py", "measure_extraction.py"]
)
def test_each_script_starts_and_explains_itself(script):
    done = subprocess.run(
        [sys.executable, str(ROOT / "eval" / script), "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
