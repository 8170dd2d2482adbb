"""Unique caller-chosen `$id`s in collections partitioned by a field.

Such a collection places a document by its partition value, so two creates of one `$id` under
two values land on two shards, and neither shard alone can refuse the second. So every document
made with a caller-chosen id has a claim row: collection `$ids:<name>`, id the document's id,
placed by the id's own token (partition key `$id`), body {"token": <the document's token>}. The
claim is written in the same transaction as the document (one Write when both share a shard,
else two-phase commit): of two racing creates, one claim create fails, and so does its document.

A claim outlives its document (deletes leave it); the next create of the id takes it over by
replacing it guarded by its `$version`, so two racing take-overs cannot both commit either.
Generated ids are unique by construction and have no claim.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from db4core.errors import (
    AlreadyExistsError,
    ConflictError,
    Db4Error,
    InvalidArgumentError,
)
from db4core.hashing import token_for
from db4router.collections import CollectionInfo
from db4router.commit import PlacedOp
from db4router.dispatch import Dispatcher
from db4router.nodeio import read_placed, write_op

CLAIMS_PREFIX = "$ids:"


def claims_of(collection: str) -> CollectionInfo:
    """The claim rows' collection: partitioned by `$id`, beside the documents in `docs`."""
    return CollectionInfo(CLAIMS_PREFIX + collection, "$id")


def needs_claim(info: CollectionInfo, chosen_id: bool) -> bool:
    """A new document needs a claim when its caller chose its id in a collection placed by
    another field (placed by `$id`, the owning shard enforces uniqueness itself)."""
    return chosen_id and info.partition_key != "$id"


@dataclass
class Wanted:
    """A create or upsert that may make a new document with a caller-chosen id."""

    id: str
    token: int  # the document's token
    kind: str  # create | upsert


@dataclass
class ClaimPlan:
    """What to send for one Wanted: the document op's kind (as asked, or "replace" for an
    upsert of a document that exists) and the claim write to commit with it, if any."""

    kind: str
    claim: PlacedOp | None


@dataclass
class _Claim:
    token: int
    version: int


class Claims:
    """Reads claims and plans their writes."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def plan(self, info: CollectionInfo, wanted: list[Wanted]) -> list[ClaimPlan]:
        """One plan per item: read the claims, and the documents of the claims found."""
        ids = [w.id for w in wanted]
        claim_tokens = [token_for(i) for i in ids]
        items = await read_placed(self.dispatcher, claims_of(info.name).name, ids, claim_tokens)
        claims = [_parse(it.document) if it.found else None for it in items]
        held = [i for i, c in enumerate(claims) if c is not None]
        docs = await read_placed(self.dispatcher, info.name, [ids[i] for i in held],
                                 [claims[i].token for i in held]) if held else []  # type: ignore[union-attr]
        exists = {i: d.found for i, d in zip(held, docs, strict=True)}
        return [self._one(info, w, claims[i], exists.get(i, False), claim_tokens[i])
                for i, w in enumerate(wanted)]

    @staticmethod
    def _one(info: CollectionInfo, w: Wanted, claim: _Claim | None, exists: bool,
             claim_token: int) -> ClaimPlan:
        body = json.dumps({"token": w.token}, separators=(",", ":")).encode()
        claims = claims_of(info.name)
        if claim is None:
            return ClaimPlan(w.kind, PlacedOp(claim_token, write_op(
                claims, "create", w.id, claim_token, body)))
        if not exists:  # its document was deleted: take it over
            return ClaimPlan(w.kind, PlacedOp(claim_token, write_op(
                claims, "replace", w.id, claim_token, body, claim.version)))
        if w.kind == "create":
            raise AlreadyExistsError(f"document {w.id!r} already exists in {info.name!r}")
        if claim.token != w.token:
            raise InvalidArgumentError(
                f"document {w.id!r} exists in {info.name!r} under another "
                f"{info.partition_key!r} value; a partition key value cannot change")
        return ClaimPlan("replace", None)  # an upsert of an existing document replaces it


def claim_error(err: Db4Error, info: CollectionInfo, w: Wanted) -> Db4Error:
    """A failed claim write as the caller should see it: another create of the same id got
    there first."""
    if isinstance(err, (AlreadyExistsError, ConflictError)):
        if w.kind == "create":
            return AlreadyExistsError(f"document {w.id!r} already exists in {info.name!r}")
        return ConflictError(f"document {w.id!r} of {info.name!r} was created by another "
                             "write at the same time; retry")
    return err


def _parse(raw: bytes) -> _Claim:
    obj = json.loads(raw)
    return _Claim(int(obj["token"]), int(obj["$version"]))
