"""The seed's list pages: ``page[number]`` and ``page[size]`` in, ``meta`` out.

Lists answer ``{"data": [...], "meta": {"page_number", "page_size",
"total_pages", "total_results"}}``; the SDK's pager reads ``meta`` and asks
for ``page[number]`` + 1 until ``total_pages``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query

PageNumber = Annotated[int, Query(alias="page[number]", ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(alias="page[size]", ge=1, le=250)]


@dataclass(frozen=True)
class PageRequest:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def meta(page: PageRequest, total: int) -> dict[str, int]:
    return {
        "page_number": page.number,
        "page_size": page.size,
        "total_pages": max(1, -(-total // page.size)),
        "total_results": total,
    }


def page_of(items: Sequence[Any], page: PageRequest) -> dict[str, Any]:
    """One page of ``items`` (all of them known) in the seed's list shape."""
    chunk = list(items[page.offset : page.offset + page.size])
    return {"data": chunk, "meta": meta(page, len(items))}
