"""Transactions: `client.transaction()` gives a `Transaction` (an `AsyncTransaction` on
`AsyncClient`), a context manager around a `_txn.TxnBuffer`.

    with client.transaction(isolation="serializable", timeout=30) as tx:
        a = tx.get("accounts", "a1")
        tx.update("accounts", "a1", {"balance": a["balance"] - 100})
        tx.create("ledger", {"from": "a1", "amount": 100})
    tx.results.documents      # per write, the document as stored (None for a delete)

Writes are buffered in this process and sent in one `Commit` when the block ends normally; an
exception in the block discards them (nothing was sent) and propagates.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from db4client._plan import arun_plan, run_plan
from db4client._txn import ACTIVE, TIMED_OUT, Mark, TxnBuffer
from db4client._wire import Document
from db4client.collection import _Runs, _RunsAsync
from db4client.results import CommitResult, Page

_DOC = """

    Reads see this transaction's own writes: `get` returns what was read, with the buffered
    writes replayed over it (an update merges its patch, None removes a field, a delete makes
    `get` return None). The system fields (`$version`, `$createdAt`, `$updatedAt`) of a document
    with buffered writes are provisional until commit. A key is read from the cluster once: a
    second `get` of it returns the same document (under serializable isolation its `$version`
    is validated at commit; a change in between is ConflictError). `find` is a plain find (read
    committed): it does not see the buffered writes and is not validated.

    After the transaction ended (committed, rolled back, or its commit failed) every method
    raises FailedPreconditionError; past its timeout every method, and the commit, raises
    TransactionAbortedError and nothing is written. Over 10,000 writes or 16 MiB of documents
    and patches, the write that passes the limit raises InvalidArgumentError (it is not
    buffered; nothing is sent). A commit that fails with UNAVAILABLE is not retried: its
    outcome is unknown. Not thread-safe: use a transaction from one thread (or task).
    """


class _Nested:
    """`with tx.nested():` (or `async with`): a savepoint released on normal exit; an exception
    inside rolls back to it, then propagates."""

    def __init__(self, buf: TxnBuffer) -> None:
        self._buf = buf
        self._mark = Mark()

    def _enter(self) -> None:
        self._buf.savepoint(self._mark)

    def _exit(self, exc: BaseException | None) -> None:
        if not self._buf.has_savepoint(self._mark):
            return  # the transaction ended, or an outer rollback_to dropped this savepoint
        if exc is not None:
            self._buf.rollback_to(self._mark)
        self._buf.release(self._mark)

    def __enter__(self) -> None:
        self._enter()

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._exit(exc)

    async def __aenter__(self) -> None:
        self._enter()

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._exit(exc)


class _Base:
    """What the sync and async transactions share: buffered writes and savepoints."""

    def __init__(self, isolation: str = "serializable", timeout: float = 30.0) -> None:
        self._buf = TxnBuffer(isolation, timeout)

    @property
    def txid(self) -> str:
        """The transaction id (32 hex digits), chosen here and recorded with every change."""
        return self._buf.txid

    @property
    def state(self) -> str:
        """active | committed | rolled back | failed | timed out."""
        return self._buf.state

    @property
    def results(self) -> CommitResult | None:
        """After commit: the documents per write (None for a delete), txid, shards."""
        return self._buf.result

    def create(self, collection: str, doc: Document) -> str:
        """Buffer a create (ALREADY_EXISTS at commit when the id is taken); its `$id`,
        generated here when the document has none."""
        return self._buf.create(collection, doc)

    def update(self, collection: str, id: str, patch: Document,
               expected_version: int | None = None, partition: Any = None) -> None:
        """Buffer a shallow-merge patch (None removes a field)."""
        self._buf.update(collection, id, patch, expected_version, partition)

    def replace(self, collection: str, id: str, doc: Document,
                expected_version: int | None = None, partition: Any = None) -> None:
        """Buffer a swap of the document's user fields."""
        self._buf.replace(collection, id, doc, expected_version, partition)

    def upsert(self, collection: str, doc: Document) -> str:
        """Buffer a create-or-replace; its `$id` (generated when absent)."""
        return self._buf.upsert(collection, doc)

    def delete(self, collection: str, id: str, expected_version: int | None = None,
               partition: Any = None) -> None:
        """Buffer a delete (a missing document is no error: `results.found` says False)."""
        self._buf.delete(collection, id, expected_version, partition)

    def savepoint(self, name: str) -> None:
        """Mark this point in the writes; the same name again marks anew."""
        self._buf.savepoint(name)

    def rollback_to(self, name: str) -> None:
        """Drop the writes (and savepoints) after the savepoint; InvalidArgumentError when
        there is no savepoint of that name."""
        self._buf.rollback_to(name)

    def release(self, name: str) -> None:
        """Forget the savepoint (and later ones); the writes stay."""
        self._buf.release(name)

    def nested(self) -> _Nested:
        """A nested transaction: a savepoint; an exception inside undoes only the writes made
        inside, then propagates."""
        return _Nested(self._buf)

    def rollback(self) -> None:
        """Discard the transaction: nothing was sent, nothing is written."""
        self._buf.discard()


class Transaction(_Base):
    """A transaction on a blocking `Client`; use it as a context manager."""

    def __init__(self, client: _Runs, isolation: str = "serializable",
                 timeout: float = 30.0) -> None:
        super().__init__(isolation, timeout)
        self._client = client

    def __repr__(self) -> str:
        return f"Transaction({self.txid!r}, {self.state!r}, {self._buf.writes} writes)"

    def __enter__(self) -> Transaction:
        self._buf.check_active()
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            self._buf.discard()
        elif self.state in (ACTIVE, TIMED_OUT):  # a timed-out one raises at commit
            self.commit()

    def get(self, collection: str, id: str, partition: Any = None) -> Document | None:
        """The document as this transaction sees it, None when it does not exist."""
        return run_plan(self._client, self._buf.get(collection, id, partition))

    def get_many(self, collection: str, ids: list[str]) -> list[Document | None]:
        """Documents by id as this transaction sees them, in input order (None where one does
        not exist), read in one request: the way to read many documents at one moment."""
        return run_plan(self._client, self._buf.get_many(collection, ids))

    def find(self, collection: str, where: dict[str, Any] | None = None, sort: Any = None,
             limit: int = 100, cursor: str | None = None) -> Page:
        """A plain find (read committed): it does not see this transaction's writes."""
        return self._client._invoke(self._buf.find(collection, where, sort, limit, cursor))

    def commit(self) -> CommitResult:
        """Send the transaction in one Commit; its results (also in `results`)."""
        return run_plan(self._client, self._buf.commit())


class AsyncTransaction(_Base):
    """A transaction on an `AsyncClient`; use it with `async with`. `get`, `find` and
    `commit` are coroutines; writes and savepoints are buffered here and return at once."""

    def __init__(self, client: _RunsAsync, isolation: str = "serializable",
                 timeout: float = 30.0) -> None:
        super().__init__(isolation, timeout)
        self._client = client

    def __repr__(self) -> str:
        return f"AsyncTransaction({self.txid!r}, {self.state!r}, {self._buf.writes} writes)"

    async def __aenter__(self) -> AsyncTransaction:
        self._buf.check_active()
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if exc is not None:
            self._buf.discard()
        elif self.state in (ACTIVE, TIMED_OUT):  # a timed-out one raises at commit
            await self.commit()

    async def get(self, collection: str, id: str, partition: Any = None) -> Document | None:
        """The document as this transaction sees it, None when it does not exist."""
        return await arun_plan(self._client, self._buf.get(collection, id, partition))

    async def get_many(self, collection: str, ids: list[str]) -> list[Document | None]:
        """Documents by id as this transaction sees them, in input order (None where one does
        not exist), read in one request: the way to read many documents at one moment."""
        return await arun_plan(self._client, self._buf.get_many(collection, ids))

    async def find(self, collection: str, where: dict[str, Any] | None = None,
                   sort: Any = None, limit: int = 100, cursor: str | None = None) -> Page:
        """A plain find (read committed): it does not see this transaction's writes."""
        return await self._client._invoke(
            self._buf.find(collection, where, sort, limit, cursor))

    async def commit(self) -> CommitResult:
        """Send the transaction in one Commit; its results (also in `results`)."""
        return await arun_plan(self._client, self._buf.commit())


Transaction.__doc__ = (Transaction.__doc__ or "") + _DOC
AsyncTransaction.__doc__ = (AsyncTransaction.__doc__ or "") + _DOC
