"""One shard database on a temporary file: partition boundaries, atomic writes, the change log.

Two tenants whose partition values land on one shard share the shard's `docs` table; the only
thing telling their documents apart is the stored ring token. These tests name a document with
the wrong tenant's token and check that nothing is read, changed or deleted.
"""

from __future__ import annotations

import json

import pytest

from db4core.errors import (
    OP_INDEX_KEY,
    AlreadyExistsError,
    ConflictError,
    Db4Error,
    InvalidArgumentError,
    NotFoundError,
)
from db4core.hashing import token_for
from db4node import changelog
from db4node.shard import Op, Shard

COLL = "users"
PK = "tenant"
ACME = token_for("acme")
EVIL = token_for("evil")


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


def op(kind: str, doc_id: str = "d1", token: int = ACME, expected: int | None = None,
       **fields) -> Op:
    return Op(kind, COLL, doc_id, token, body(**fields) if fields else b"", expected, PK)


@pytest.fixture
def acme_doc(shard) -> dict:
    """Tenant acme's document d1, version 1."""
    results, _ = shard.write([op("create", tenant="acme", secret="acme-only")])
    return json.loads(results[0].document)


def stored(shard: Shard, doc_id: str = "d1") -> dict | None:
    row = shard.read(COLL, [doc_id])[0]
    return json.loads(row[0]) if row else None


def changes(shard: Shard) -> list[changelog.Change]:
    return list(changelog.read(shard.conn))


# ---- reads ---------------------------------------------------------------------------------


def test_read_with_the_stored_token_finds_the_document(shard, acme_doc):
    row = shard.read(COLL, ["d1"], [ACME])[0]
    assert row is not None and json.loads(row[0]) == acme_doc and row[1] == ACME


def test_read_with_another_token_is_missing(shard, acme_doc):
    assert shard.read(COLL, ["d1"], [EVIL]) == [None]


def test_read_without_tokens_finds_by_id(shard, acme_doc):
    assert shard.read(COLL, ["d1"])[0] is not None
    assert shard.read(COLL, ["d1"], [])[0] is not None  # an empty wire list means "no tokens"


def test_read_checks_each_id_against_its_own_token(shard, acme_doc):
    shard.write([op("create", "d2", EVIL, tenant="evil")])
    got = shard.read(COLL, ["d1", "d2", "d1", "d2"], [ACME, ACME, EVIL, EVIL])
    assert [r is not None for r in got] == [True, False, False, True]


def test_read_with_a_token_count_unlike_the_ids_is_invalid(shard, acme_doc):
    with pytest.raises(InvalidArgumentError, match="one per id"):
        shard.read(COLL, ["d1", "d2"], [ACME])


# ---- point writes naming the wrong partition -------------------------------------------------


def assert_untouched(shard: Shard, doc: dict, log_len: int = 1) -> None:
    assert stored(shard) == doc
    assert len(changes(shard)) == log_len


def test_update_with_another_token_is_not_found(shard, acme_doc):
    with pytest.raises(NotFoundError, match="not found"):
        shard.write([op("update", token=EVIL, secret="stolen")])
    assert_untouched(shard, acme_doc)


def test_update_with_another_token_hides_the_version(shard, acme_doc):
    # A ConflictError would tell the caller the other tenant's document exists and its version.
    with pytest.raises(NotFoundError):
        shard.write([op("update", token=EVIL, expected=7, secret="stolen")])
    assert_untouched(shard, acme_doc)


def test_replace_with_another_token_is_not_found(shard, acme_doc):
    with pytest.raises(NotFoundError):
        shard.write([op("replace", token=EVIL, tenant="evil", secret="stolen")])
    assert_untouched(shard, acme_doc)


def test_delete_with_another_token_finds_nothing(shard, acme_doc):
    results, _ = shard.write([op("delete", token=EVIL)])
    assert results[0].found is False
    assert_untouched(shard, acme_doc)


def test_delete_with_another_token_and_a_version_is_not_found(shard, acme_doc):
    with pytest.raises(NotFoundError):
        shard.write([op("delete", token=EVIL, expected=1)])
    assert_untouched(shard, acme_doc)


def test_upsert_of_another_tenants_id_is_refused_without_leaking_it(shard, acme_doc):
    with pytest.raises(InvalidArgumentError, match="partition key value cannot change") as err:
        shard.write([op("upsert", token=EVIL, tenant="evil", secret="stolen")])
    assert "acme" not in err.value.message
    assert_untouched(shard, acme_doc)


def test_create_of_another_tenants_id_already_exists(shard, acme_doc):
    with pytest.raises(AlreadyExistsError) as err:
        shard.write([op("create", token=EVIL, tenant="evil")])
    assert "acme" not in err.value.message
    assert_untouched(shard, acme_doc)


def test_batch_with_one_wrong_token_writes_nothing(shard, acme_doc):
    ops = [op("create", "d2", EVIL, tenant="evil"), op("delete", token=EVIL),
           op("update", token=EVIL, secret="stolen")]
    with pytest.raises(NotFoundError):
        shard.write(ops)
    assert_untouched(shard, acme_doc)
    assert stored(shard, "d2") is None


# ---- the partition value never changes ------------------------------------------------------


@pytest.mark.parametrize("kind", ["update", "replace", "upsert"])
def test_a_write_cannot_change_the_partition_value(shard, acme_doc, kind):
    with pytest.raises(InvalidArgumentError, match="partition key value cannot change"):
        shard.write([op(kind, tenant="evil", secret="moved")])
    assert_untouched(shard, acme_doc)


def test_replace_without_the_partition_field_is_refused(shard, acme_doc):
    with pytest.raises(InvalidArgumentError, match="partition key"):
        shard.write([op("replace", secret="no tenant")])
    assert_untouched(shard, acme_doc)


def test_an_update_removing_the_partition_field_is_refused(shard, acme_doc):
    with pytest.raises(InvalidArgumentError, match="partition key"):
        shard.write([op("update", tenant=None)])
    assert_untouched(shard, acme_doc)


def test_writes_with_the_right_partition_succeed(shard, acme_doc):
    results, _ = shard.write([op("update", secret="v2"), op("replace", tenant="acme", s="v3"),
                              op("upsert", tenant="acme", s="v4")])
    assert [json.loads(r.document)["$version"] for r in results] == [2, 3, 4]
    assert stored(shard)["s"] == "v4" and stored(shard)["tenant"] == "acme"
    results, _ = shard.write([op("delete", expected=4)])
    assert results[0].found and stored(shard) is None


def test_a_new_document_must_hash_to_its_token(shard):
    with pytest.raises(InvalidArgumentError, match="partition key"):
        shard.write([op("create", token=EVIL, tenant="acme")])
    assert stored(shard) is None and changes(shard) == []


# ---- which op failed ------------------------------------------------------------------------


def test_an_op_error_names_its_index_in_a_trailer(shard, acme_doc):
    ops = [op("create", "d2", tenant="acme"), op("create", "d3", tenant="acme"),
           op("create", "d1", tenant="acme")]
    with pytest.raises(AlreadyExistsError) as err:
        shard.write(ops)
    assert err.value.trailers()[OP_INDEX_KEY] == "2"
    assert stored(shard, "d2") is None and stored(shard, "d3") is None


def test_a_bad_document_names_its_index_and_keeps_other_trailers(shard, acme_doc):
    with pytest.raises(InvalidArgumentError) as err:
        shard.write([op("create", "d2", tenant="acme"),
                     Op("create", COLL, "d3", ACME, b"[1]", None, PK)])
    assert err.value.trailers() == {OP_INDEX_KEY: "1"}
    with pytest.raises(ConflictError) as conflict:
        shard.write([op("update", expected=5, a=1)])
    trailers = conflict.value.trailers()
    assert trailers[OP_INDEX_KEY] == "0" and trailers["db4-actual-version"] == "1"


def test_the_op_index_survives_the_wire_translation(shard, acme_doc):
    from db4core.errors import from_status, op_index

    with pytest.raises(Db4Error) as err:
        shard.write([op("update", "d1", secret="x"), op("update", "nope", secret="x")])
    back = from_status(err.value.code, err.value.message, err.value.trailers())
    assert isinstance(back, NotFoundError) and op_index(back) == 1
    assert op_index(NotFoundError("plain")) is None


# ---- atomicity and the change log -----------------------------------------------------------


def test_a_rolled_back_write_leaves_no_change_record(shard, acme_doc):
    lsn = shard.last_lsn
    with pytest.raises(AlreadyExistsError):
        shard.write([op("update", secret="v2"), op("create", "d2", tenant="acme"),
                     op("create", "d1", tenant="acme")])
    assert shard.last_lsn == lsn == 1
    assert [c.lsn for c in changes(shard)] == [1]
    assert stored(shard) == acme_doc and stored(shard, "d2") is None
    shard.write([op("update", secret="v2")])
    assert [c.lsn for c in changes(shard)] == [1, 2]  # LSNs stay dense after a rollback


def test_change_records_describe_each_write(shard, acme_doc):
    shard.write([op("update", secret="v2")])
    shard.write([op("delete")])
    log = changes(shard)
    assert [(c.op, c.id) for c in log] == [("insert", "d1"), ("update", "d1"), ("delete", "d1")]
    assert log[0].before is None and json.loads(log[1].before) == acme_doc
    assert log[2].after is None and json.loads(log[2].before)["secret"] == "v2"
    assert len({c.txid for c in log}) == 3


def test_a_tampered_change_record_fails_its_checksum(shard, acme_doc):
    shard.conn.execute("UPDATE changes SET after = replace(after, 'acme-only', 'forged')")
    with pytest.raises(changelog.CorruptLogError, match="record 1"):
        changes(shard)


def test_reopening_keeps_documents_and_the_last_lsn(tmp_path):
    path = str(tmp_path / "s1.db")
    first = Shard("s1", path)
    first.write([op("create", tenant="acme"), op("create", "d2", tenant="acme")])
    first.close()
    again = Shard("s1", path)
    try:
        assert again.last_lsn == 2
        assert stored(again) is not None and stored(again, "d2") is not None
    finally:
        again.close()
