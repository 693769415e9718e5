"""The PostgreSQL backend's in-process LRU: by count, or by what its items weigh."""

from retrieval.store.postgres import _Cache


def _fetcher(calls: list[list[int]]):
    def fetch(keys: list[int]) -> dict[int, str]:
        calls.append(keys)
        return {k: "x" * k for k in keys}

    return fetch


def test_a_weighed_cache_stays_within_its_budget_least_recently_used_out():
    calls: list[list[int]] = []
    cache: _Cache[int, str] = _Cache(10, weigh=len)
    fetch = _fetcher(calls)

    assert cache.get_many([4, 3], fetch) == ["xxxx", "xxx"]
    assert cache.get_many([4], fetch) == ["xxxx"]  # kept: not fetched again, now most recent
    assert calls == [[4, 3]]
    cache.get_many([5], fetch)  # 12 > 10: the least recently used (3) goes
    assert cache.held == 9
    cache.get_many([3], fetch)
    assert calls[-1] == [3] and cache.held == 8  # 4 went this time

    # One item heavier than the whole budget is handed over, not kept.
    assert cache.get_many([11], fetch) == ["x" * 11]
    assert cache.held == 0
    cache.get_many([11], fetch)
    assert calls[-1] == [11]


def test_an_unweighed_cache_counts_its_items():
    cache: _Cache[int, str] = _Cache(2)
    calls: list[list[int]] = []
    cache.get_many([1, 2, 3], _fetcher(calls))  # all three handed over, two kept
    cache.get_many([2, 3], _fetcher(calls))
    assert calls == [[1, 2, 3]] and cache.held == 2
