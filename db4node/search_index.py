"""Full-text indexes of one shard: FTS5 tables that triggers on `docs` keep current.

Layout of an index <name> (names are [A-Za-z0-9_-], so the ':' below never collides):
- `"fts:<name>"`: an FTS5 table, columns c0..c{n-1} for the fields in order, the definition's
  tokenizer; its rowid is the document's row number.
- `"fts:<name>:rows"(rid INTEGER PRIMARY KEY, id TEXT UNIQUE)`: row number <-> document id
  (`docs` is WITHOUT ROWID, so FTS5 cannot point at it).
- triggers `"fts:<name>:insert"`, `":delete"`, `":update"` on `docs`: a document change updates
  the index in the change's own SQLite transaction, whichever path wrote the row (plain writes,
  committed transactions, anything later); a rolled-back write leaves the index as it was.
- a `search_indexes` row: the definition, and whether the existing documents are indexed yet.

A column holds the field's value when it is a JSON string, else nothing (NULL, no tokens).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import apsw

from db4core.errors import InvalidArgumentError, TransactionAbortedError
from db4core.names import COLLECTION_PATTERN, validate_collection
from db4core.query.paths import sql_json_path
from db4node.sql import scalar, transaction

# The definition's tokenizer -> FTS5's tokenize option ("" is the default, porter).
TOKENIZERS = {
    "": "porter unicode61",
    "porter": "porter unicode61",
    "unicode61": "unicode61",
    "trigram": "trigram",
}
MAX_FIELDS = 64
# Documents indexed per writer-thread job of a build: the shard's plain writes run between two
# jobs, so a build of any size delays a write by one job (a few tens of milliseconds) at most.
CHUNK = 1000


@dataclass(frozen=True)
class SearchField:
    """An indexed field: dotted path and BM25 column weight."""

    path: str
    weight: float


@dataclass(frozen=True)
class SearchDef:
    """A full-text index definition as a shard stores it."""

    name: str
    collection: str
    fields: tuple[SearchField, ...]
    tokenizer: str  # a key of TOKENIZERS other than ""

    @property
    def table(self) -> str:
        """The FTS5 table, quoted."""
        return _ident(f"fts:{self.name}")

    @property
    def rows(self) -> str:
        """The row-number table, quoted."""
        return _ident(f"fts:{self.name}:rows")

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(f.weight for f in self.fields)

    def definition_json(self) -> str:
        """The stored form of fields and tokenizer (canonical, so equal definitions compare)."""
        return json.dumps({"fields": [{"path": f.path, "weight": f.weight} for f in self.fields],
                           "tokenizer": self.tokenizer}, separators=(",", ":"))

    @classmethod
    def from_row(cls, name: str, collection: str, definition: str) -> SearchDef:
        obj = json.loads(definition)
        fields = tuple(SearchField(f["path"], float(f["weight"])) for f in obj["fields"])
        return cls(name, collection, fields, obj["tokenizer"])


def validate_name(name: object) -> str:
    """A search index name: like a collection name."""
    if not isinstance(name, str) or not COLLECTION_PATTERN.fullmatch(name):
        raise InvalidArgumentError(
            "search index name must be 1-128 characters of [A-Za-z0-9_-] starting with a "
            f"letter, got {name!r}")
    return name


def define(name: str, collection: str, fields: list[tuple[str, float]],
           tokenizer: str) -> SearchDef:
    """A validated definition (weight 0 means the default, 1)."""
    validate_name(name)
    validate_collection(collection)
    if not fields:
        raise InvalidArgumentError(f"search index {name!r} names no fields")
    if len(fields) > MAX_FIELDS:
        raise InvalidArgumentError(
            f"search index {name!r} has {len(fields)} fields; at most {MAX_FIELDS}")
    if tokenizer not in TOKENIZERS:
        raise InvalidArgumentError(
            f"search index {name!r}: unknown tokenizer {tokenizer!r}; use porter, unicode61 "
            "or trigram")
    checked = []
    for path, weight in fields:
        sql_json_path(path)  # raises naming a bad path
        if not weight == weight or weight < 0 or weight == float("inf"):
            raise InvalidArgumentError(
                f"search index {name!r}: field {path!r} has weight {weight}; a weight is a "
                "positive number")
        checked.append(SearchField(path, float(weight) or 1.0))
    if len({f.path for f in checked}) != len(checked):
        raise InvalidArgumentError(f"search index {name!r} names a field twice")
    return SearchDef(name, collection, tuple(checked), tokenizer or "porter")


# ---- definitions stored in the shard ---------------------------------------------------------


def lookup(conn: apsw.Connection, name: str) -> tuple[SearchDef, bool] | None:
    """(definition, ready) of an index hosted here, or None."""
    row = conn.execute("SELECT collection, definition, ready FROM search_indexes WHERE name = ?",
                       (name,)).fetchone()
    if row is None:
        return None
    return SearchDef.from_row(name, row[0], row[1]), bool(row[2])


def hosted(conn: apsw.Connection) -> list[SearchDef]:
    """Every definition the shard holds."""
    return [SearchDef.from_row(n, c, d) for n, c, d in conn.execute(
        "SELECT name, collection, definition FROM search_indexes ORDER BY name")]


# ---- build, upkeep, drop (writer thread) -----------------------------------------------------


def merge_step(conn: apsw.Connection, pages: int) -> bool:
    """Merge some of the b-tree segments of the shard's complete indexes toward one (FTS5's
    'merge' with a negative page count: about `pages` pages written each, whatever the levels),
    in one transaction; True when any work was done (FTS5 reports it by changing at least two
    rows). A query reads every segment of its terms, so fewer segments make it faster."""
    if pages <= 0:
        raise ValueError(f"pages must be positive, got {pages}")
    did = False
    with transaction(conn):
        for name, collection, definition in conn.execute(
                "SELECT name, collection, definition FROM search_indexes WHERE ready "
                "ORDER BY name").fetchall():
            table = SearchDef.from_row(str(name), str(collection), str(definition)).table
            before = conn.total_changes()
            conn.execute(f"INSERT INTO {table}({table}, rank) VALUES ('merge', ?)", (-pages,))
            did = did or conn.total_changes() - before >= 2
    return did


def begin(conn: apsw.Connection, d: SearchDef) -> bool:
    """Make the index exist and be kept current from now on; True when it is complete already.

    A stored definition that differs (dropped and created again elsewhere while this shard
    missed the drop) is replaced: the definition the caller holds is the current one.
    """
    with transaction(conn):
        found = lookup(conn, d.name)
        if found is not None and found[0] == d:
            return found[1]
        if found is not None:
            _drop_objects(conn, found[0])
            conn.execute("DELETE FROM search_indexes WHERE name = ?", (d.name,))
        _create_objects(conn, d)
        conn.execute(
            "INSERT INTO search_indexes(name, collection, definition, ready) VALUES (?,?,?,0)",
            (d.name, d.collection, d.definition_json()))
    return False


def backfill(conn: apsw.Connection, d: SearchDef, after: str, chunk: int = CHUNK
             ) -> tuple[str | None, int]:
    """Index the collection's documents after id `after` (up to `chunk` of them) that are not
    indexed yet, in one transaction; (last id looked at or None when none was left, documents
    looked at).

    The triggers keep every document written since `begin` current, so a document already in
    the row table is skipped, never indexed twice, and the ones added here carry the content
    committed now: the writer thread runs nothing else meanwhile.
    """
    with transaction(conn):
        _check_unchanged(conn, d)
        last = scalar(conn, "SELECT max(id) FROM (SELECT id FROM docs WHERE collection = ? AND "
                            "id > ? ORDER BY id LIMIT ?)", (d.collection, after, chunk))
        if last is None:
            return None, 0
        seen = scalar(conn, "SELECT count(*) FROM docs WHERE collection = ? AND id > ? AND "
                            "id <= ?", (d.collection, after, last))
        top = scalar(conn, f"SELECT coalesce(max(rid), 0) FROM {d.rows}")
        conn.execute(
            f"INSERT INTO {d.rows}(id) SELECT id FROM docs WHERE collection = ? AND id > ? "
            f"AND id <= ? AND NOT EXISTS (SELECT 1 FROM {d.rows} r WHERE r.id = docs.id) "
            "ORDER BY id", (d.collection, after, last))
        # New row numbers are all above the old maximum: those rows are the ones to index.
        conn.execute(
            f"INSERT INTO {d.table}(rowid, {_columns(d)}) SELECT r.rid, {_values(d, 'd.body')} "
            f"FROM {d.rows} r JOIN docs d ON d.collection = ? AND d.id = r.id WHERE r.rid > ?",
            (d.collection, top))
    return last, int(seen)


def finish(conn: apsw.Connection, d: SearchDef) -> None:
    """Mark the index complete."""
    with transaction(conn):
        _check_unchanged(conn, d)
        conn.execute("UPDATE search_indexes SET ready = 1 WHERE name = ?", (d.name,))


def drop(conn: apsw.Connection, name: str) -> bool:
    """Drop an index's tables, triggers and definition; False when the shard had none."""
    with transaction(conn):
        found = lookup(conn, name)
        if found is None:
            return False
        _drop_objects(conn, found[0])
        conn.execute("DELETE FROM search_indexes WHERE name = ?", (name,))
    return True


def _check_unchanged(conn: apsw.Connection, d: SearchDef) -> None:
    found = lookup(conn, d.name)
    if found is None or found[0] != d:
        what = "dropped" if found is None else "replaced by another definition"
        raise TransactionAbortedError(
            f"search index {d.name!r} was {what} while it was being built")


def _create_objects(conn: apsw.Connection, d: SearchDef) -> None:
    tokenize = _literal(TOKENIZERS[d.tokenizer])
    conn.execute(f"CREATE VIRTUAL TABLE {d.table} USING fts5({_columns(d)}, "
                 f"tokenize={tokenize})")
    conn.execute(f"CREATE TABLE {d.rows} (rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE)")
    for sql in _triggers(d):
        conn.execute(sql)


def _drop_objects(conn: apsw.Connection, d: SearchDef) -> None:
    for event in ("insert", "delete", "update"):
        conn.execute(f"DROP TRIGGER IF EXISTS {_ident(f'fts:{d.name}:{event}')}")
    conn.execute(f"DROP TABLE IF EXISTS {d.table}")
    conn.execute(f"DROP TABLE IF EXISTS {d.rows}")


def _triggers(d: SearchDef) -> list[str]:
    """The upkeep triggers. Each first removes the document's row, then adds it again: under
    the INSERT OR REPLACE of a document write the statements of a trigger take REPLACE as
    their conflict policy, so nothing may rely on a conflict being an error."""
    coll = _literal(d.collection)

    def remove(ref: str, guard: str = "") -> str:
        also = f" AND {guard}" if guard else ""
        return (f"DELETE FROM {d.table} WHERE rowid = (SELECT rid FROM {d.rows} "
                f"WHERE id = {ref}.id){also};\n"
                f"DELETE FROM {d.rows} WHERE id = {ref}.id{also};")

    def add(ref: str, guard: str = "") -> str:
        when = f" WHERE {guard}" if guard else ""
        return (f"INSERT INTO {d.rows}(id) SELECT {ref}.id{when};\n"
                f"INSERT INTO {d.table}(rowid, {_columns(d)}) SELECT (SELECT rid FROM {d.rows} "
                f"WHERE id = {ref}.id), {_values(d, f'{ref}.body')}{when};")

    name = f"fts:{d.name}"
    return [
        f"CREATE TRIGGER {_ident(name + ':insert')} AFTER INSERT ON docs "
        f"WHEN new.collection = {coll} BEGIN\n{remove('new')}\n{add('new')}\nEND",
        f"CREATE TRIGGER {_ident(name + ':delete')} AFTER DELETE ON docs "
        f"WHEN old.collection = {coll} BEGIN\n{remove('old')}\nEND",
        f"CREATE TRIGGER {_ident(name + ':update')} AFTER UPDATE ON docs "
        f"WHEN old.collection = {coll} OR new.collection = {coll} BEGIN\n"
        f"{remove('old', f'old.collection = {coll}')}\n"
        f"{add('new', f'new.collection = {coll}')}\nEND",
    ]


def _columns(d: SearchDef) -> str:
    return ", ".join(f"c{i}" for i in range(len(d.fields)))


def _values(d: SearchDef, body: str) -> str:
    """Per field, its value in the JSON `body` when that is a string, else NULL."""
    out = []
    for f in d.fields:
        path = _literal(sql_json_path(f.path))
        out.append(f"CASE WHEN json_type({body}, {path}) = 'text' "
                   f"THEN json_extract({body}, {path}) END")
    return ", ".join(out)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
