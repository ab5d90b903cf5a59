"""`rag bench`'s update section on a real (small) index: it adds and removes a copy of an article, through
`rag ingest` and in a warm process, and leaves the index as it found it."""

import pytest

from rag.bench import update
from rag.pipeline import Pipeline

from .conftest import SEED_ID, make_settings

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
