"""Every setting has a type, a default and a help line, and the README documents it."""

from rag.config import Settings
from tests.conftest import ROOT


def test_every_setting_has_help_and_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no help line"
        env = f"RAG_{name.upper()}"
        assert f"`{env}`" in readme, f"{env} is not documented in README.md"


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_TOP_K", "7")
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path))
    s = Settings(_env_file=None)
    assert s.top_k == 7 and s.index_dir == tmp_path
