"""Which URLs may be fetched (no server-side request forgery), and the names web articles get."""

import pytest

from rag.fetch.urls import FetchRefused, check_url, normalize, private_reason, same_site, url_article_id


@pytest.mark.parametrize(
    "address, kind",
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "private"),  # AWS metadata over IPv6
        ("100.100.100.200", "not a public address"),  # shared address space (Alibaba metadata)
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4 mapped into IPv6
    ],
)
def test_addresses_inside_a_network_are_named(address, kind):
    assert kind in (private_reason(address) or "")


def test_public_addresses_pass():
    assert private_reason("93.184.215.14") is None and private_reason("2606:4700::6810:84e5") is None


@pytest.mark.parametrize(
    "url, why",
    [
        ("ftp://example.com/a", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("gopher://127.0.0.1:6379/_", "only http:// and https://"),
        ("http://user:secret@example.com/", "user name or password"),
        ("http:///path-only", "names no host"),
        ("http://example.com:99999/", "not a valid URL"),
        ("", "absolute http"),
        ("http://127.0.0.1:8000/admin", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/", "loopback"),
        ("http://2130706433/", "loopback"),  # 127.0.0.1 written as one number
        ("http://0x7f.1/", "loopback"),
        ("https://" + "a" * 2100 + ".com/", "limit is 2,048"),
    ],
)
def test_urls_that_are_refused_say_why(url, why):
    with pytest.raises(FetchRefused, match=why):
        check_url(url)


def test_private_addresses_are_allowed_only_when_asked():
    target = check_url("http://127.0.0.1:8000/a", allow_private=True)
    assert (target.host, target.port, target.address) == ("127.0.0.1", 8000, None)
    with pytest.raises(FetchRefused, match="only http"):
        check_url("file:///etc/passwd", allow_private=True)


def test_a_public_literal_address_is_pinned():
    target = check_url("https://93.184.215.14/news")
    assert (target.address, target.port) == ("93.184.215.14", 443)


def test_article_names_come_from_the_normalized_url():
    a = "https://www.Example.com:443/2023/06/01/Story.html?utm_source=rss&id=7#comments"
    b = "https://www.example.com/2023/06/01/Story.html?id=7"
    assert normalize(a) == normalize(b) == "https://www.example.com/2023/06/01/Story.html?id=7"
    assert url_article_id(a) == url_article_id(b)
    assert url_article_id(b).startswith("example.com-2023-06-01-Story-")
    assert url_article_id(b) != url_article_id("https://www.example.com/2023/06/01/Story.html?id=8")


def test_a_page_names_its_canonical_url_only_on_its_own_site():
    assert same_site("https://edition.cnn.com/a", "https://www.cnn.com/b")
    assert same_site("https://www.cnn.com/a", "https://cnn.com/b")
    assert not same_site("https://cnn.com.evil.example/a", "https://cnn.com/b")
    assert not same_site("https://evil.example/a", "https://cnn.com/a")
