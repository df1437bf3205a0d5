"""The seed's list pages: meta and slicing."""

from __future__ import annotations

from mediaserver.api.telnyx.paging import PageRequest, meta, page_of


def test_meta_counts_pages_and_an_empty_list_has_one() -> None:
    assert meta(PageRequest(2, 20), 55) == {
        "page_number": 2,
        "page_size": 20,
        "total_pages": 3,
        "total_results": 55,
    }
    assert meta(PageRequest(1, 20), 0)["total_pages"] == 1
    assert meta(PageRequest(1, 5), 5)["total_pages"] == 1


def test_page_of_slices_the_requested_page() -> None:
    items = list(range(7))
    assert page_of(items, PageRequest(2, 3))["data"] == [3, 4, 5]
    assert page_of(items, PageRequest(3, 3))["data"] == [6]
    assert page_of(items, PageRequest(4, 3))["data"] == []
