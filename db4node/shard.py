"""One shard: a SQLite database holding documents and their change log.

Every write request runs in one IMMEDIATE transaction: either all of its ops and their change-log
records commit, or nothing does. Commit returns only after the WAL is fsynced (synchronous=FULL).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass

import apsw

from db4core import documents
from db4core.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
)
from db4core.hashing import from_signed, to_signed, token_for
from db4node import changelog, pragmas, schema


@dataclass
class Op:
    """One document operation, decoded from the wire."""

    kind: str  # create | update | replace | upsert | delete
    collection: str
    id: str
    token: int
    body: bytes = b""
    expected_version: int | None = None
    partition_key: str = "$id"


@dataclass
class Current:
    """The stored row an op starts from."""

    doc: documents.Document
    version: int
    raw: str


@dataclass
class OpResult:
    """Outcome of one op: found is False only for a delete of a missing document."""

    found: bool
    document: bytes = b""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _encode(doc: documents.Document) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


class Shard:
    """A shard database file and the operations on it."""

    def __init__(self, shard_id: str, path: str) -> None:
        self.shard_id = shard_id
        self.path = path
        self.conn = apsw.Connection(path)
        pragmas.apply_all(self.conn)
        schema.migrate(self.conn)
        self.last_lsn = changelog.last_lsn(self.conn)

    def close(self) -> None:
        """Close the database (a checkpoint happens on the last connection's close)."""
        self.conn.close()

    # ---- reads -------------------------------------------------------------------------------

    def read(self, collection: str, ids: list[str]) -> list[tuple[str, int] | None]:
        """(body, unsigned token) per id, None where missing."""
        out: list[tuple[str, int] | None] = []
        for doc_id in ids:
            row = self.conn.execute(
                "SELECT body, token FROM docs WHERE collection = ? AND id = ?", (collection, doc_id)
            ).fetchone()
            out.append((row[0], from_signed(row[1])) if row else None)
        return out

    def _current(self, collection: str, doc_id: str) -> Current | None:
        row = self.conn.execute(
            "SELECT body, version FROM docs WHERE collection = ? AND id = ?", (collection, doc_id)
        ).fetchone()
        return Current(json.loads(row[0]), row[1], row[0]) if row else None

    # ---- writes ------------------------------------------------------------------------------

    def write(self, ops: list[Op], txid: str = "") -> tuple[list[OpResult], str]:
        """Apply ops atomically with their change-log records; returns results and the txid."""
        txid = txid or uuid.uuid4().hex
        now = _now_ms()
        lsn = self.last_lsn
        results: list[OpResult] = []
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for op in ops:
                result, change = self._apply(op, now)
                results.append(result)
                if change is not None:
                    lsn += 1
                    op_name, collection, doc_id, before, after = change
                    changelog.append(self.conn, changelog.Change(
                        lsn, txid, op_name, collection, doc_id, before, after, now))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.last_lsn = lsn
        return results, txid

    def _apply(self, op: Op, now: int) -> tuple[OpResult, tuple | None]:
        """Apply one op inside the open transaction; return its result and change fields."""
        current = self._current(op.collection, op.id)
        self._check_version(op, current)
        if op.kind == "delete":
            return self._delete(op, current)
        if op.kind == "create" and current is not None:
            raise AlreadyExistsError(f"document {op.id!r} already exists in {op.collection!r}")
        if op.kind in ("update", "replace") and current is None:
            raise NotFoundError(f"document {op.id!r} not found in {op.collection!r}")
        fields = self._new_fields(op, current)
        if current is None:
            doc = documents.stamp(fields, op.id, 1, now, now)
        else:
            created = current.doc["$createdAt"]
            doc = documents.stamp(fields, op.id, current.version + 1, created, now)
        body = self._store(op, doc)
        before = current.raw if current else None
        change = ("insert" if current is None else "update", op.collection, op.id, before, body)
        return OpResult(True, body.encode()), change

    @staticmethod
    def _check_version(op: Op, current: Current | None) -> None:
        """An expected_version must match the stored `$version` (ABORTED otherwise)."""
        if op.expected_version is None:
            return
        if current is None:
            raise NotFoundError(f"document {op.id!r} not found in {op.collection!r}")
        if current.version != op.expected_version:
            raise ConflictError(
                f"version conflict on {op.collection}/{op.id}: expected {op.expected_version}, "
                f"found {current.version}",
                op.expected_version,
                current.version,
            )

    @staticmethod
    def _new_fields(op: Op, current: Current | None) -> documents.Document:
        """The user fields after the op: merged for update, given for create/replace/upsert."""
        given = documents.decode_object(op.body, "patch" if op.kind == "update" else "document")
        if op.kind == "update":
            documents.check_patch(given)
            assert current is not None
            return documents.merge_patch(documents.user_fields(current.doc), given)
        documents.check_field_names(given)
        return documents.user_fields(given)

    def _store(self, op: Op, doc: documents.Document) -> str:
        """Write the document row after checking size and that its partition key stays put."""
        found, value = documents.get_path(doc, op.partition_key)
        if not found or token_for(value) != op.token:
            raise InvalidArgumentError(
                f"document {op.id!r}: partition key {op.partition_key!r} is missing or would move "
                "the document to another shard (a partition key value cannot change)"
            )
        body = _encode(doc)
        documents.check_size(body.encode())
        self.conn.execute(
            "INSERT OR REPLACE INTO docs(collection, id, token, version, body) VALUES (?,?,?,?,?)",
            (op.collection, op.id, to_signed(op.token), doc["$version"], body),
        )
        return body

    def _delete(self, op: Op, current: Current | None) -> tuple[OpResult, tuple | None]:
        if current is None:
            return OpResult(False), None
        self.conn.execute(
            "DELETE FROM docs WHERE collection = ? AND id = ?", (op.collection, op.id)
        )
        return OpResult(True), ("delete", op.collection, op.id, current.raw, None)

    # ---- stats -------------------------------------------------------------------------------

    def stats(self) -> dict:
        """Document counts per collection, file size, last LSN."""
        per = dict(self.conn.execute("SELECT collection, COUNT(*) FROM docs GROUP BY collection"))
        size = sum(
            os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p)
        )
        return {"documents": sum(per.values()), "bytes": size, "last_lsn": self.last_lsn,
                "collections": per}
