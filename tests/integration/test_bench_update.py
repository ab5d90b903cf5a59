"""`rag bench`'s update section on a real (small) index: it adds and removes a copy of an article, through
`rag ingest` and in a warm process, and leaves the index as it found it."""

import os
import subprocess
import sys

import numpy as np
import pytest

from rag.bench import update
from rag.pipeline import Pipeline
from tests.conftest import SEED_ID, make_settings

pytestmark = pytest.mark.slow


def test_the_update_section_measures_and_leaves_the_index_as_it_was(writable_bundled, embedder):
    index_dir = writable_bundled.settings.index_dir
    before = [a["id"] for a in writable_bundled.list_articles()]
    result = update.run(index_dir, writable_bundled.get_article(SEED_ID), repeats=2)
    assert result["cli_ingest_one"]["seconds"] > 0 and result["cli_ingest_one"]["peak_rss_mb"] > 100
    assert result["warm_add_one_s"] > 0 and result["warm_delete_one_s"] > 0
    after = Pipeline(make_settings(index_dir), embedder=embedder)
    assert [a["id"] for a in after.list_articles()] == before
    assert result["chunks"] == after.stats()["chunks"]
    whole, warm = result["snapshot_from_whole_store_s"], result["warm_add_one_s"]
    assert result["whole_store_vs_warm_add"] == round(whole / warm, 1)


def test_the_peak_rss_of_rag_ingest_is_its_own_not_the_benchs():
    """Started straight from a large process, a child was charged that process's peak; through the small one
    that starts it now, a child that allocates nothing is charged tens of megabytes."""
    ballast = np.ones(1 << 27)  # 1 GiB, every page touched
    direct = subprocess.Popen([sys.executable, "-c", "pass"])
    charged_direct = os.wait4(direct.pid, 0)[2].ru_maxrss
    measured = subprocess.run(
        [sys.executable, "-c", update._PEAK_RSS_OF, sys.executable, "-c", "pass"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert charged_direct > ballast.nbytes // 1024  # the trap the small process avoids, still there
    assert int(measured.stdout) < 100 * 1024
