"""The calls export task (Callr v2 "Export calls"): the call records as a CSV file.

The rows and columns are those of ``GET /api/cdrs/export`` (the header, then
one row per record, oldest first: :meth:`CallRecords.export_rows`); here they
are written to a file under ``storage.cache/exports`` named by the task id,
a batch at a time in a worker thread, reporting progress against the count
of matching records taken at the start (records started meanwhile may make
the last batch longer; progress stays below 100 until the end).
"""

from __future__ import annotations

import asyncio
import csv
import io
from contextlib import aclosing
from pathlib import Path
from typing import TextIO

from mediaserver.store import CallFilter, Store
from mediaserver.tasks import Progress

WRITE_BATCH = 500  # rows per write: a thread hop per batch, not per row
MAX_DAYS = 31  # the seed: "You cannot export more than 31 days of calls at once"


def exports_folder(cache: Path) -> Path:
    return cache / "exports"


async def export_calls(store: Store, filters: CallFilter, target: Path, progress: Progress) -> int:
    """Write the matching call records to ``target`` as CSV; how many records."""
    total = (await store.calls.search(filters, limit=1)).total
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    handle: TextIO = await asyncio.to_thread(partial.open, "w", encoding="utf-8", newline="")
    rows = -1  # the header is not a record
    try:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        async with aclosing(store.calls.export_rows(filters, order="asc")) as records:
            async for row in records:
                writer.writerow(row)
                rows += 1
                if rows % WRITE_BATCH == 0:
                    await asyncio.to_thread(handle.write, buffer.getvalue())
                    buffer.seek(0)
                    buffer.truncate()
                    progress(rows, max(total, rows))
        await asyncio.to_thread(handle.write, buffer.getvalue())
    except BaseException:  # cancelled or failed: no half file left behind
        handle.close()
        partial.unlink(missing_ok=True)
        raise
    await asyncio.to_thread(handle.close)
    await asyncio.to_thread(partial.replace, target)
    return rows
