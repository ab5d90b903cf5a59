"""The reader's training script runs end to end on a tiny model: a few steps on 32 SQuADShifts examples make the
loss fall, and it writes its weights and the record of what it did. No real training runs in the tests."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import DATASETS, ROOT, in_ci

pytestmark = pytest.mark.slow


def shifts_or_skip():
    path = DATASETS / "squadshifts-train"
    if not (path / "new_wiki_v1.0.json").is_file():
        if in_ci():
            pytest.fail(f"{path} is missing")
        pytest.skip(f"{path} is missing: the shared datasets are not beside this checkout")


def test_a_few_steps_on_a_tiny_model_lower_the_loss_and_write_the_record(tmp_path):
    shifts_or_skip()
    out = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "eval" / "train_reader.py"),
            "--out",
            str(out),
            "--tiny",
            "--lora-rank",
            "0",
            "--max-examples",
            "32",
            "--epochs",
            "8",
            "--news-epochs",
            "0",
            "--batch-size",
            "8",
            "--lr",
            "3e-3",
            "--dev-examples",
            "16",
            "--no-xquad",
            "--log-every",
            "4",
            "--eval-every",
            "1000",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "record.json").read_text())
    losses = [h["loss"] for h in record["history"] if "loss" in h]
    assert len(losses) >= 4 and losses[-1] < 0.8 * losses[0], losses
    assert record["seed"] == 20261206 and record["command"].startswith("python ")
    assert set(record["data"]) == {
        "squadshifts-train/amazon_reviews_v1.0.json",
        "squadshifts-train/new_wiki_v1.0.json",
        "squadshifts-train/reddit_v1.0.json",
    }
    assert all(len(h) == 64 for h in record["data"].values())
    assert record["weights"]["bytes"] == (out / "reader.safetensors").stat().st_size > 0
    assert record["wall_seconds"] >= 0 and "shifts_dev" in record["figures"]
