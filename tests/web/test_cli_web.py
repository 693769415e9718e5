"""`newsbot ingest URL`, `newsbot refresh` and `newsbot stats` against a site on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from bot.cli import cli

from .fake_web import FakeSite, Page, article_page, opml, rss

PUBLISHED = "2024-05-14T09:00:00Z"


@pytest.fixture
def runner(runner, monkeypatch):
    """The shared CLI runner (tests/conftest.py), without a pause between two fetches."""
    monkeypatch.setenv("NEWSBOT_FETCH_DELAY", "0")
    return runner


@pytest.fixture
def site():
    with FakeSite() as site:
        site.pages["/robots.txt"] = Page("", "text/plain")
        site.pages["/news/tram"] = Page(
            article_page(
                "Tram line extended to the airport",
                ["The city's tram line now runs to the airport, after three years of works."],
                published=PUBLISHED,
            )
        )
        site.pages["/news/zoo"] = Page(
            article_page(
                "Zoo welcomes twin snow leopards",
                ["Two snow leopard cubs were born at the city zoo on Saturday, keepers said."],
                published=PUBLISHED,
            )
        )
        site.pages["/rss.xml"] = Page(
            rss(
                [
                    {"title": "Tram", "link": site.url("/news/tram")},
                    {"title": "Zoo", "link": site.url("/news/zoo")},
                ]
            ),
            "application/rss+xml",
        )
        site.pages["/empty.xml"] = Page(rss([]), "application/rss+xml")
        yield site


def test_ingest_takes_a_feed_url_and_a_second_run_finds_it_unchanged(runner, site, tmp_path):
    index = str(tmp_path / "index")
    first = runner.invoke(cli, ["ingest", site.url("/rss.xml"), "--index", index])
    assert first.exit_code == 0, first.output
    assert "Added 2, updated 0" in first.output
    assert "2 articles" in first.output

    again = runner.invoke(cli, ["ingest", site.url("/rss.xml"), "--index", index])
    assert again.exit_code == 0, again.output
    assert "Added 0, updated 0" in again.output


def test_ingest_takes_a_local_opml_file(runner, site, tmp_path):
    subscriptions = tmp_path / "subscriptions.opml"
    subscriptions.write_text(opml([site.url("/rss.xml")]))
    result = runner.invoke(cli, ["ingest", str(subscriptions), "--index", str(tmp_path / "i")])
    assert result.exit_code == 0, result.output
    assert "Added 2" in result.output


def test_ingest_of_a_folder_without_articles_says_so_and_fails(runner, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.docx").write_bytes(b"PK")
    result = runner.invoke(cli, ["ingest", str(empty), "--index", str(tmp_path / "i")])
    assert result.exit_code == 1
    assert "No articles found" in result.output
    assert "a folder with 0 readable files" in result.output


def test_refresh_reads_newsbot_feeds_and_stats_shows_each_source(runner, site, tmp_path):
    env = {"NEWSBOT_INDEX_DIR": str(tmp_path / "index"), "NEWSBOT_FEEDS": site.url("/rss.xml")}
    result = runner.invoke(cli, ["refresh", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert sorted(report["added"]) == [
        "Tram line extended to the airport",
        "Zoo welcomes twin snow leopards",
    ]
    assert report["articles_in_index"] == 2
    assert set(report["seconds"]) == {"fetch", "extract", "index", "total"}

    stats = runner.invoke(cli, ["stats", "--json"], env=env)
    assert stats.exit_code == 0, stats.output
    [source] = json.loads(stats.output)["sources"]
    assert (source["url"], source["kind"], source["articles"]) == (
        site.url("/rss.xml"),
        "feed",
        2,
    )
    assert source["last_ok"] and source["last_error"] is None
    text = runner.invoke(cli, ["stats"], env=env).output
    assert f"{site.url('/rss.xml')}  (feed, 2 articles, last ok" in text


def test_refresh_that_reads_nothing_exits_1_and_says_what_it_looked_at(runner, site, tmp_path):
    result = runner.invoke(
        cli,
        ["refresh", site.url("/empty.xml"), site.url("/missing.xml")],
        env={"NEWSBOT_INDEX_DIR": str(tmp_path / "index")},
    )
    assert result.exit_code == 1
    assert "Nothing readable in 2 source(s)" in result.output
    assert "the feed has no entries" in result.output and "HTTP 404" in result.output


def test_refresh_without_sources_explains_what_to_set(runner, tmp_path):
    result = runner.invoke(cli, ["refresh"], env={"NEWSBOT_INDEX_DIR": str(tmp_path / "i")})
    assert result.exit_code == 1
    assert "set NEWSBOT_FEEDS" in result.output
