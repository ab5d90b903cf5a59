import json
from pathlib import Path

from rag.documents.parse import parse_date, read_path
from rag.documents.sources import file_article_id
from rag.types import Article, Skipped
from tests.conftest import BUNDLED, SEED_FILE, SEED_ID


def read_one(path: Path):
    items = list(read_path(path))
    assert len(items) == 1, items
    return items[0]


def test_seed_article_title_date_and_chrome_removed():
    a = read_one(BUNDLED / SEED_FILE)
    assert isinstance(a, Article)
    assert a.id == SEED_ID
    assert a.title == "U.S. to unveil human trafficking steps; Harris visits Guatemala"
    assert a.published == "2023-05-31"
    assert "Main Menu" not in a.text and "Comments are Closed" not in a.text
    assert a.text.startswith("WASHINGTON – The United States")
    assert a.text.endswith("as the results of its biggest ever elections were processed.")
    assert "$310 million" in a.text


def test_dates_in_several_forms():
    assert parse_date("Wednesday, May 31, 2023") == "2023-05-31"
    assert parse_date("1 June 2022") == "2022-06-01"
    assert parse_date("Sept. 3, 2021") == "2021-09-03"
    assert parse_date("2022-07-01T10:00:00Z") == "2022-07-01"
    assert parse_date("February 30, 2022") is None
    assert parse_date("not a date") is None


def test_markdown_front_matter(tmp_path):
    f = tmp_path / "story.md"
    f.write_text(
        "---\ntitle: Dam opens\npublished: 2024-02-03\nsource: Example News\nurl: https://example.org/dam\n---\n"
        "# Ignored heading\n\nThe dam opened on **Friday** after [six years](https://x.y) of work.\n"
    )
    a = read_one(f)
    assert (a.id, a.title, a.published, a.source, a.url) == (
        file_article_id("story.md"),
        "Dam opens",
        "2024-02-03",
        "Example News",
        "https://example.org/dam",
    )
    assert "The dam opened on Friday after six years of work." in a.text
    assert "https://x.y" not in a.text


def test_html_main_text_without_scripts_styles_or_navigation(tmp_path):
    f = tmp_path / "page.html"
    body = " ".join(["The council approved the new bridge budget of $12 million on Tuesday."] * 4)
    f.write_text(f"""<html><head><title>Bridge approved</title><style>p {{color: red}}</style>
        <script>alert('owned')</script></head><body><nav><a href="/">Home</a> <a href="/news">News</a></nav>
        <article><h1>Bridge approved</h1><p>{body}</p><p>Work starts in May, officials said.</p></article>
        <script>document.write('tracking')</script><footer>Copyright Example</footer></body></html>""")
    a = read_one(f)
    assert a.title == "Bridge approved"
    assert "$12 million" in a.text and "Work starts in May" in a.text
    for junk in ("alert", "tracking", "color: red", "Copyright Example"):
        assert junk not in a.text


def test_json_and_jsonl_records(tmp_path):
    rec = {"id": "r1", "title": "T", "text": "Body text here.", "source": "S", "url": None, "published": "2022-06-16"}
    (tmp_path / "one.json").write_text(json.dumps(rec))
    a = read_one(tmp_path / "one.json")
    assert (a.id, a.title, a.text, a.source, a.published) == ("r1", "T", "Body text here.", "S", "2022-06-16")
    lines = [
        json.dumps({**rec, "id": "r2"}),
        "{not json",
        json.dumps({"id": "r3", "text": ""}),
        json.dumps({**rec, "id": "r4"}),
    ]
    (tmp_path / "many.jsonl").write_text("\n".join(lines) + "\n")
    items = list(read_path(tmp_path / "many.jsonl"))
    assert [i.id for i in items if isinstance(i, Article)] == ["r2", "r4"]
    reasons = [i.reason for i in items if isinstance(i, Skipped)]
    assert len(reasons) == 2
    assert "malformed JSON at line" in reasons[0]
    assert "no non-empty 'text'" in reasons[1]


def test_bad_files_are_skipped_with_reasons(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("   \n\n ")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 owners said prices rose.".encode("latin-1"))
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    (tmp_path / "broken.json").write_text('{"id": "x", "text": ')
    expected = {
        "empty.txt": "empty file",
        "blank.txt": "only whitespace",
        "binary.txt": "binary file",
        "latin1.txt": "not valid UTF-8",
        "sheet.xlsx": "unsupported extension '.xlsx'",
        "broken.json": "malformed JSON",
    }
    for name, reason in expected.items():
        item = read_one(tmp_path / name)
        assert isinstance(item, Skipped), name
        assert reason in item.reason, (name, item.reason)


def test_utf16_with_bom_is_read(tmp_path):
    f = tmp_path / "u16.txt"
    f.write_bytes("Headline here\n\nThe mayor said 40 homes flooded.".encode("utf-16"))
    a = read_one(f)
    assert a.title == "Headline here" and "40 homes" in a.text


def test_oversized_file_is_skipped(tmp_path):
    f = tmp_path / "big.txt"
    f.write_text("Headline\n\n" + "word " * 5000)
    item = list(read_path(f, max_bytes=1000))[0]
    assert isinstance(item, Skipped) and "over the 1,000-byte limit" in item.reason


def test_a_record_with_an_unpaired_surrogate_is_skipped_and_the_rest_read(tmp_path):
    lines = [
        '{"id": "bad\\ud800", "title": "T", "text": "Some text here."}',
        '{"id": "ok", "title": "T", "text": "Paired: \\ud83d\\ude00 is a smile.", "url": "https://x.test/\\udfff"}',
        '{"id": "good", "title": "T", "text": "Paired: \\ud83d\\ude00 is a smile."}',
    ]
    (tmp_path / "records.jsonl").write_text("\n".join(lines) + "\n")
    got = list(read_path(tmp_path / "records.jsonl"))
    assert [a.id for a in got if isinstance(a, Article)] == ["good"]
    assert "😀" in next(a for a in got if isinstance(a, Article)).text
    skipped = [s for s in got if isinstance(s, Skipped)]
    assert [s.path.rsplit("/", 1)[-1] for s in skipped] == ["records.jsonl:1", "records.jsonl:2"]
    assert "field 'id' holds an unpaired surrogate" in skipped[0].reason
    assert "field 'url' holds an unpaired surrogate" in skipped[1].reason


def test_json_nested_too_deeply_is_skipped_with_a_reason(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "deep.jsonl").write_text("[" * 100_000 + "]" * 100_000 + '\n{"id": "fine", "text": "Fine text."}\n')
    got = list(read_path(tmp_path))
    assert [a.id for a in got if isinstance(a, Article)] == ["fine"]
    reasons = sorted(s.reason for s in got if isinstance(s, Skipped))
    assert reasons == ["the JSON is nested too deeply to read"] * 2
