"""The rows of recently used (kind, municipality, period) buckets, with their tallies.

A recomputation reads a period's notification and review figures from the bucket's tally
(`services.reporting.domain.tallies`), and its rows only when the tally defers. Every write
updates the bucket it lands in (and the one a row left, when it moved to another period), so
a bucket in memory is always what the store holds for it while this process owns the
municipality.

Bounded in bytes, least recently used out first: a national replica keeps the current
half-years of every municipality it owns in memory instead of re-reading them from the store
on every batch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

#: (collection, municipality code, period name)
BucketKey = tuple[str, str, str]
#: Bytes a cached row costs, measured with tracemalloc for a notification row (about 360:
#: its tuple and integers, its id, the bucket's dict entry, the id → bucket entry and its
#: tally's share); a review row, with its ratings, costs a little more.
ROW_BYTES = 400


class Tally(Protocol):
    def add(self, row: Any, /) -> None: ...
    def remove(self, row: Any, /) -> None: ...
    def replace(self, old: Any, new: Any, /) -> None: ...
    def add_all(self, rows: Iterable[Any], /) -> None: ...


class Bucket:
    """One bucket's rows by document id, and their tally."""

    __slots__ = ("rows", "tally")

    def __init__(self, tally: Tally) -> None:
        self.rows: dict[str, Any] = {}
        self.tally = tally

    def put(self, doc_id: str, row: Any) -> bool:
        """Keep `row` as the document's; True when the bucket did not hold it before."""
        rows = self.rows
        old = rows.get(doc_id)
        rows[doc_id] = row
        if old is None:
            self.tally.add(row)
            return True
        self.tally.replace(old, row)
        return False

    def pop(self, doc_id: str) -> bool:
        """Drop the document's row; True when the bucket held it."""
        old = self.rows.pop(doc_id, None)
        if old is None:
            return False
        self.tally.remove(old)
        return True

    def __len__(self) -> int:
        return len(self.rows)


class RowCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_rows = max(1, max_bytes // ROW_BYTES)
        self._buckets: OrderedDict[BucketKey, Bucket] = OrderedDict()
        #: Per (collection, document id), the cached bucket its row is in.
        self._bucket_of: dict[tuple[str, str], BucketKey] = {}
        self._rows = 0

    def clear(self) -> None:
        self._buckets.clear()
        self._bucket_of.clear()
        self._rows = 0

    def __contains__(self, key: BucketKey) -> bool:
        return key in self._buckets

    def __iter__(self) -> Iterator[BucketKey]:
        return iter(self._buckets)

    @property
    def rows(self) -> int:
        return self._rows

    def get(self, key: BucketKey) -> Bucket | None:
        """The bucket, if cached (then it is the most recently used)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            self._buckets.move_to_end(key)
        return bucket

    def put(self, key: BucketKey, rows: dict[str, Any], tally: Callable[[], Tally]) -> Bucket:
        """Cache a bucket read from the store (or known empty); evicts the least recently
        used buckets beyond the bound, never the one just put."""
        bucket = Bucket(tally())
        bucket.rows.update(rows)
        bucket.tally.add_all(rows.values())
        for doc_id in rows:
            self._bucket_of[(key[0], doc_id)] = key
        self._buckets[key] = bucket
        self._rows += len(bucket)
        while len(self._buckets) > 1 and self._rows > self.max_rows:
            (collection, _code, _period), evicted = self._buckets.popitem(last=False)
            self._rows -= len(evicted)
            for doc_id in evicted.rows:
                self._bucket_of.pop((collection, doc_id), None)
        return bucket

    def written(self, key: BucketKey, doc_id: str, row: Any) -> None:
        """A row was written in the bucket `key`: update the cached bucket it left (it moved
        to another period) and the one it is in now."""
        where = (key[0], doc_id)
        old = self._bucket_of.get(where)
        if old is not None and old != key:
            left = self._buckets.get(old)
            if left is not None and left.pop(doc_id):
                self._rows -= 1
        bucket = self._buckets.get(key)
        if bucket is not None:
            if bucket.put(doc_id, row):
                self._rows += 1
            if old != key:
                self._bucket_of[where] = key
        elif old is not None:
            del self._bucket_of[where]
