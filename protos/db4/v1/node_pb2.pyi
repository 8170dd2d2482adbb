from db4.v1 import router_pb2 as _router_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OpKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OP_KIND_UNSPECIFIED: _ClassVar[OpKind]
    OP_KIND_CREATE: _ClassVar[OpKind]
    OP_KIND_UPDATE: _ClassVar[OpKind]
    OP_KIND_REPLACE: _ClassVar[OpKind]
    OP_KIND_UPSERT: _ClassVar[OpKind]
    OP_KIND_DELETE: _ClassVar[OpKind]
    OP_KIND_INCREMENT: _ClassVar[OpKind]
OP_KIND_UNSPECIFIED: OpKind
OP_KIND_CREATE: OpKind
OP_KIND_UPDATE: OpKind
OP_KIND_REPLACE: OpKind
OP_KIND_UPSERT: OpKind
OP_KIND_DELETE: OpKind
OP_KIND_INCREMENT: OpKind

class TokenRange(_message.Message):
    __slots__ = ("first", "last")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    first: int
    last: int
    def __init__(self, first: _Optional[int] = ..., last: _Optional[int] = ...) -> None: ...

class SnapshotShardRequest(_message.Message):
    __slots__ = ("shard_id", "ranges")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    ranges: _containers.RepeatedCompositeFieldContainer[TokenRange]
    def __init__(self, shard_id: _Optional[str] = ..., ranges: _Optional[_Iterable[_Union[TokenRange, _Mapping]]] = ...) -> None: ...

class FileChunk(_message.Message):
    __slots__ = ("data", "lsn", "size")
    DATA_FIELD_NUMBER: _ClassVar[int]
    LSN_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    lsn: int
    size: int
    def __init__(self, data: _Optional[bytes] = ..., lsn: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class InstallShardRequest(_message.Message):
    __slots__ = ("shard_id", "parent", "ranges", "op", "data", "source_address")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    parent: str
    ranges: _containers.RepeatedCompositeFieldContainer[TokenRange]
    op: str
    data: bytes
    source_address: str
    def __init__(self, shard_id: _Optional[str] = ..., parent: _Optional[str] = ..., ranges: _Optional[_Iterable[_Union[TokenRange, _Mapping]]] = ..., op: _Optional[str] = ..., data: _Optional[bytes] = ..., source_address: _Optional[str] = ...) -> None: ...

class InstallShardResponse(_message.Message):
    __slots__ = ("applied", "documents", "bytes")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    applied: int
    documents: int
    bytes: int
    def __init__(self, applied: _Optional[int] = ..., documents: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class FollowerStatusRequest(_message.Message):
    __slots__ = ("shard_id",)
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    def __init__(self, shard_id: _Optional[str] = ...) -> None: ...

class FollowerStatusResponse(_message.Message):
    __slots__ = ("exists", "following", "op", "parent", "applied")
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    FOLLOWING_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    exists: bool
    following: bool
    op: str
    parent: str
    applied: int
    def __init__(self, exists: _Optional[bool] = ..., following: _Optional[bool] = ..., op: _Optional[str] = ..., parent: _Optional[str] = ..., applied: _Optional[int] = ...) -> None: ...

class ReadLogRequest(_message.Message):
    __slots__ = ("shard_id", "after_lsn", "max_records")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_LSN_FIELD_NUMBER: _ClassVar[int]
    MAX_RECORDS_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    after_lsn: int
    max_records: int
    def __init__(self, shard_id: _Optional[str] = ..., after_lsn: _Optional[int] = ..., max_records: _Optional[int] = ...) -> None: ...

class ReadLogResponse(_message.Message):
    __slots__ = ("records", "last_lsn")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    LAST_LSN_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[ChangeRecord]
    last_lsn: int
    def __init__(self, records: _Optional[_Iterable[_Union[ChangeRecord, _Mapping]]] = ..., last_lsn: _Optional[int] = ...) -> None: ...

class ApplyParentRequest(_message.Message):
    __slots__ = ("shard_id", "records")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    records: _containers.RepeatedCompositeFieldContainer[ChangeRecord]
    def __init__(self, shard_id: _Optional[str] = ..., records: _Optional[_Iterable[_Union[ChangeRecord, _Mapping]]] = ...) -> None: ...

class ApplyParentResponse(_message.Message):
    __slots__ = ("applied",)
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: int
    def __init__(self, applied: _Optional[int] = ...) -> None: ...

class FenceRequest(_message.Message):
    __slots__ = ("shard_id", "ranges", "op", "epoch")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    ranges: _containers.RepeatedCompositeFieldContainer[TokenRange]
    op: str
    epoch: int
    def __init__(self, shard_id: _Optional[str] = ..., ranges: _Optional[_Iterable[_Union[TokenRange, _Mapping]]] = ..., op: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...

class FenceResponse(_message.Message):
    __slots__ = ("prepared", "last_lsn")
    PREPARED_FIELD_NUMBER: _ClassVar[int]
    LAST_LSN_FIELD_NUMBER: _ClassVar[int]
    prepared: _containers.RepeatedScalarFieldContainer[str]
    last_lsn: int
    def __init__(self, prepared: _Optional[_Iterable[str]] = ..., last_lsn: _Optional[int] = ...) -> None: ...

class UnfenceRequest(_message.Message):
    __slots__ = ("shard_id", "op")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    op: str
    def __init__(self, shard_id: _Optional[str] = ..., op: _Optional[str] = ...) -> None: ...

class UnfenceResponse(_message.Message):
    __slots__ = ("lifted",)
    LIFTED_FIELD_NUMBER: _ClassVar[int]
    lifted: bool
    def __init__(self, lifted: _Optional[bool] = ...) -> None: ...

class DropFollowerRequest(_message.Message):
    __slots__ = ("shard_id", "op")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    op: str
    def __init__(self, shard_id: _Optional[str] = ..., op: _Optional[str] = ...) -> None: ...

class DropFollowerResponse(_message.Message):
    __slots__ = ("dropped",)
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    dropped: bool
    def __init__(self, dropped: _Optional[bool] = ...) -> None: ...

class WriteOp(_message.Message):
    __slots__ = ("kind", "collection", "id", "token", "body", "expected_version", "partition_key", "condition")
    KIND_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_KEY_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    kind: OpKind
    collection: str
    id: str
    token: int
    body: bytes
    expected_version: int
    partition_key: str
    condition: bytes
    def __init__(self, kind: _Optional[_Union[OpKind, str]] = ..., collection: _Optional[str] = ..., id: _Optional[str] = ..., token: _Optional[int] = ..., body: _Optional[bytes] = ..., expected_version: _Optional[int] = ..., partition_key: _Optional[str] = ..., condition: _Optional[bytes] = ...) -> None: ...

class ReadCheck(_message.Message):
    __slots__ = ("collection", "id", "token", "version")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    token: int
    version: int
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., token: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class WriteRequest(_message.Message):
    __slots__ = ("epoch", "shard_id", "ops", "txid", "reads")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    TXID_FIELD_NUMBER: _ClassVar[int]
    READS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    shard_id: str
    ops: _containers.RepeatedCompositeFieldContainer[WriteOp]
    txid: str
    reads: _containers.RepeatedCompositeFieldContainer[ReadCheck]
    def __init__(self, epoch: _Optional[int] = ..., shard_id: _Optional[str] = ..., ops: _Optional[_Iterable[_Union[WriteOp, _Mapping]]] = ..., txid: _Optional[str] = ..., reads: _Optional[_Iterable[_Union[ReadCheck, _Mapping]]] = ...) -> None: ...

class WriteResult(_message.Message):
    __slots__ = ("found", "document")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    found: bool
    document: bytes
    def __init__(self, found: _Optional[bool] = ..., document: _Optional[bytes] = ...) -> None: ...

class WriteResponse(_message.Message):
    __slots__ = ("results", "last_lsn", "txid")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    LAST_LSN_FIELD_NUMBER: _ClassVar[int]
    TXID_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[WriteResult]
    last_lsn: int
    txid: str
    def __init__(self, results: _Optional[_Iterable[_Union[WriteResult, _Mapping]]] = ..., last_lsn: _Optional[int] = ..., txid: _Optional[str] = ...) -> None: ...

class ReadRequest(_message.Message):
    __slots__ = ("epoch", "shard_id", "collection", "ids", "tokens")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    shard_id: str
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    tokens: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, epoch: _Optional[int] = ..., shard_id: _Optional[str] = ..., collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., tokens: _Optional[_Iterable[int]] = ...) -> None: ...

class ReadItem(_message.Message):
    __slots__ = ("found", "document", "token")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    found: bool
    document: bytes
    token: int
    def __init__(self, found: _Optional[bool] = ..., document: _Optional[bytes] = ..., token: _Optional[int] = ...) -> None: ...

class ReadResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ReadItem]
    def __init__(self, items: _Optional[_Iterable[_Union[ReadItem, _Mapping]]] = ...) -> None: ...

class ShardStatsRequest(_message.Message):
    __slots__ = ("shard_ids", "epoch")
    SHARD_IDS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    shard_ids: _containers.RepeatedScalarFieldContainer[str]
    epoch: int
    def __init__(self, shard_ids: _Optional[_Iterable[str]] = ..., epoch: _Optional[int] = ...) -> None: ...

class ShardStat(_message.Message):
    __slots__ = ("shard_id", "documents", "bytes", "last_lsn", "collections")
    class CollectionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    LAST_LSN_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    documents: int
    bytes: int
    last_lsn: int
    collections: _containers.ScalarMap[str, int]
    def __init__(self, shard_id: _Optional[str] = ..., documents: _Optional[int] = ..., bytes: _Optional[int] = ..., last_lsn: _Optional[int] = ..., collections: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ShardStatsResponse(_message.Message):
    __slots__ = ("node_id", "shards")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    shards: _containers.RepeatedCompositeFieldContainer[ShardStat]
    def __init__(self, node_id: _Optional[str] = ..., shards: _Optional[_Iterable[_Union[ShardStat, _Mapping]]] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("epoch", "shard_id", "collection", "where", "sort", "limit", "after", "until", "index", "explain")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    shard_id: str
    collection: str
    where: bytes
    sort: _containers.RepeatedCompositeFieldContainer[_router_pb2.SortField]
    limit: int
    after: bytes
    until: bytes
    index: str
    explain: bool
    def __init__(self, epoch: _Optional[int] = ..., shard_id: _Optional[str] = ..., collection: _Optional[str] = ..., where: _Optional[bytes] = ..., sort: _Optional[_Iterable[_Union[_router_pb2.SortField, _Mapping]]] = ..., limit: _Optional[int] = ..., after: _Optional[bytes] = ..., until: _Optional[bytes] = ..., index: _Optional[str] = ..., explain: _Optional[bool] = ...) -> None: ...

class QueryRow(_message.Message):
    __slots__ = ("document", "position")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    document: bytes
    position: bytes
    def __init__(self, document: _Optional[bytes] = ..., position: _Optional[bytes] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("rows", "has_more", "plan")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[QueryRow]
    has_more: bool
    plan: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rows: _Optional[_Iterable[_Union[QueryRow, _Mapping]]] = ..., has_more: _Optional[bool] = ..., plan: _Optional[_Iterable[str]] = ...) -> None: ...

class NodeCountRequest(_message.Message):
    __slots__ = ("epoch", "shard_id", "collection", "where")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    shard_id: str
    collection: str
    where: bytes
    def __init__(self, epoch: _Optional[int] = ..., shard_id: _Optional[str] = ..., collection: _Optional[str] = ..., where: _Optional[bytes] = ...) -> None: ...

class NodeCountResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class QueryShardsRequest(_message.Message):
    __slots__ = ("queries",)
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[QueryRequest]
    def __init__(self, queries: _Optional[_Iterable[_Union[QueryRequest, _Mapping]]] = ...) -> None: ...

class QueryShardsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[QueryResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[QueryResponse, _Mapping]]] = ...) -> None: ...

class CountShardsRequest(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedCompositeFieldContainer[NodeCountRequest]
    def __init__(self, counts: _Optional[_Iterable[_Union[NodeCountRequest, _Mapping]]] = ...) -> None: ...

class CountShardsResponse(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, counts: _Optional[_Iterable[int]] = ...) -> None: ...

class EnsureIndexRequest(_message.Message):
    __slots__ = ("shard_id", "index")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    index: _router_pb2.Index
    def __init__(self, shard_id: _Optional[str] = ..., index: _Optional[_Union[_router_pb2.Index, _Mapping]] = ...) -> None: ...

class EnsureIndexResponse(_message.Message):
    __slots__ = ("documents", "created")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    documents: int
    created: bool
    def __init__(self, documents: _Optional[int] = ..., created: _Optional[bool] = ...) -> None: ...

class DropShardIndexRequest(_message.Message):
    __slots__ = ("shard_id", "name")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    name: str
    def __init__(self, shard_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class DropShardIndexResponse(_message.Message):
    __slots__ = ("dropped",)
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    dropped: bool
    def __init__(self, dropped: _Optional[bool] = ...) -> None: ...

class PrepareRequest(_message.Message):
    __slots__ = ("epoch", "shard_id", "txid", "ops", "reads", "participants", "in_doubt_ms")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    TXID_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    READS_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    IN_DOUBT_MS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    shard_id: str
    txid: str
    ops: _containers.RepeatedCompositeFieldContainer[WriteOp]
    reads: _containers.RepeatedCompositeFieldContainer[ReadCheck]
    participants: _containers.RepeatedScalarFieldContainer[str]
    in_doubt_ms: int
    def __init__(self, epoch: _Optional[int] = ..., shard_id: _Optional[str] = ..., txid: _Optional[str] = ..., ops: _Optional[_Iterable[_Union[WriteOp, _Mapping]]] = ..., reads: _Optional[_Iterable[_Union[ReadCheck, _Mapping]]] = ..., participants: _Optional[_Iterable[str]] = ..., in_doubt_ms: _Optional[int] = ...) -> None: ...

class PrepareResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[WriteResult]
    def __init__(self, results: _Optional[_Iterable[_Union[WriteResult, _Mapping]]] = ...) -> None: ...

class ResolveRequest(_message.Message):
    __slots__ = ("shard_id", "txid")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    TXID_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    txid: str
    def __init__(self, shard_id: _Optional[str] = ..., txid: _Optional[str] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("had_intents", "last_lsn")
    HAD_INTENTS_FIELD_NUMBER: _ClassVar[int]
    LAST_LSN_FIELD_NUMBER: _ClassVar[int]
    had_intents: bool
    last_lsn: int
    def __init__(self, had_intents: _Optional[bool] = ..., last_lsn: _Optional[int] = ...) -> None: ...

class ChangeRecord(_message.Message):
    __slots__ = ("lsn", "txid", "op", "collection", "id", "before", "after", "ts", "participants", "token")
    LSN_FIELD_NUMBER: _ClassVar[int]
    TXID_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    lsn: int
    txid: str
    op: str
    collection: str
    id: str
    before: bytes
    after: bytes
    ts: int
    participants: _containers.RepeatedScalarFieldContainer[str]
    token: int
    def __init__(self, lsn: _Optional[int] = ..., txid: _Optional[str] = ..., op: _Optional[str] = ..., collection: _Optional[str] = ..., id: _Optional[str] = ..., before: _Optional[bytes] = ..., after: _Optional[bytes] = ..., ts: _Optional[int] = ..., participants: _Optional[_Iterable[str]] = ..., token: _Optional[int] = ...) -> None: ...

class TailChangesRequest(_message.Message):
    __slots__ = ("shard_id", "after_lsn", "max_records", "heartbeat_ms")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_LSN_FIELD_NUMBER: _ClassVar[int]
    MAX_RECORDS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    after_lsn: int
    max_records: int
    heartbeat_ms: int
    def __init__(self, shard_id: _Optional[str] = ..., after_lsn: _Optional[int] = ..., max_records: _Optional[int] = ..., heartbeat_ms: _Optional[int] = ...) -> None: ...

class TailChangesResponse(_message.Message):
    __slots__ = ("records", "last_lsn")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    LAST_LSN_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[ChangeRecord]
    last_lsn: int
    def __init__(self, records: _Optional[_Iterable[_Union[ChangeRecord, _Mapping]]] = ..., last_lsn: _Optional[int] = ...) -> None: ...

class LogStatsRequest(_message.Message):
    __slots__ = ("shard_ids",)
    SHARD_IDS_FIELD_NUMBER: _ClassVar[int]
    shard_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, shard_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class LogStat(_message.Message):
    __slots__ = ("shard_id", "first_lsn", "last_lsn", "entries", "bytes", "checkpoint")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_LSN_FIELD_NUMBER: _ClassVar[int]
    LAST_LSN_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    first_lsn: int
    last_lsn: int
    entries: int
    bytes: int
    checkpoint: int
    def __init__(self, shard_id: _Optional[str] = ..., first_lsn: _Optional[int] = ..., last_lsn: _Optional[int] = ..., entries: _Optional[int] = ..., bytes: _Optional[int] = ..., checkpoint: _Optional[int] = ...) -> None: ...

class LogStatsResponse(_message.Message):
    __slots__ = ("node_id", "shards")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    shards: _containers.RepeatedCompositeFieldContainer[LogStat]
    def __init__(self, node_id: _Optional[str] = ..., shards: _Optional[_Iterable[_Union[LogStat, _Mapping]]] = ...) -> None: ...

class EnsureSearchIndexRequest(_message.Message):
    __slots__ = ("shard_id", "index")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    index: _router_pb2.SearchIndex
    def __init__(self, shard_id: _Optional[str] = ..., index: _Optional[_Union[_router_pb2.SearchIndex, _Mapping]] = ...) -> None: ...

class ShardSearchProgress(_message.Message):
    __slots__ = ("documents", "done")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    documents: int
    done: bool
    def __init__(self, documents: _Optional[int] = ..., done: _Optional[bool] = ...) -> None: ...

class DropShardSearchIndexRequest(_message.Message):
    __slots__ = ("shard_id", "name")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    name: str
    def __init__(self, shard_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class SearchStatsRequest(_message.Message):
    __slots__ = ("shard_id", "index", "phrases", "epoch")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PHRASES_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    index: str
    phrases: _containers.RepeatedScalarFieldContainer[str]
    epoch: int
    def __init__(self, shard_id: _Optional[str] = ..., index: _Optional[str] = ..., phrases: _Optional[_Iterable[str]] = ..., epoch: _Optional[int] = ...) -> None: ...

class SearchStatsResponse(_message.Message):
    __slots__ = ("rows", "tokens", "phrase_rows")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    PHRASE_ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    tokens: int
    phrase_rows: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, rows: _Optional[int] = ..., tokens: _Optional[int] = ..., phrase_rows: _Optional[_Iterable[int]] = ...) -> None: ...

class SearchShardRequest(_message.Message):
    __slots__ = ("shard_id", "index", "expression", "idf", "avgdl", "limit", "after", "where", "highlight_open", "highlight_close", "snippet_tokens", "epoch", "phrases", "expect")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    IDF_FIELD_NUMBER: _ClassVar[int]
    AVGDL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    HIGHLIGHT_OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGHLIGHT_CLOSE_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PHRASES_FIELD_NUMBER: _ClassVar[int]
    EXPECT_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    index: str
    expression: str
    idf: _containers.RepeatedScalarFieldContainer[float]
    avgdl: float
    limit: int
    after: bytes
    where: bytes
    highlight_open: str
    highlight_close: str
    snippet_tokens: int
    epoch: int
    phrases: _containers.RepeatedScalarFieldContainer[str]
    expect: SearchStatsResponse
    def __init__(self, shard_id: _Optional[str] = ..., index: _Optional[str] = ..., expression: _Optional[str] = ..., idf: _Optional[_Iterable[float]] = ..., avgdl: _Optional[float] = ..., limit: _Optional[int] = ..., after: _Optional[bytes] = ..., where: _Optional[bytes] = ..., highlight_open: _Optional[str] = ..., highlight_close: _Optional[str] = ..., snippet_tokens: _Optional[int] = ..., epoch: _Optional[int] = ..., phrases: _Optional[_Iterable[str]] = ..., expect: _Optional[_Union[SearchStatsResponse, _Mapping]] = ...) -> None: ...

class CheckpointShardsRequest(_message.Message):
    __slots__ = ("shard_ids",)
    SHARD_IDS_FIELD_NUMBER: _ClassVar[int]
    shard_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, shard_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ShardCheckpoint(_message.Message):
    __slots__ = ("shard_id", "node_id", "truncated", "wal_bytes")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    WAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    node_id: str
    truncated: int
    wal_bytes: int
    def __init__(self, shard_id: _Optional[str] = ..., node_id: _Optional[str] = ..., truncated: _Optional[int] = ..., wal_bytes: _Optional[int] = ...) -> None: ...

class CheckpointShardsResponse(_message.Message):
    __slots__ = ("shards",)
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    shards: _containers.RepeatedCompositeFieldContainer[ShardCheckpoint]
    def __init__(self, shards: _Optional[_Iterable[_Union[ShardCheckpoint, _Mapping]]] = ...) -> None: ...

class SearchStatsShardsRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[SearchStatsRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[SearchStatsRequest, _Mapping]]] = ...) -> None: ...

class SearchStatsShardsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SearchStatsResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[SearchStatsResponse, _Mapping]]] = ...) -> None: ...

class SearchMergedRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[SearchShardRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[SearchShardRequest, _Mapping]]] = ...) -> None: ...

class SearchShardResponse(_message.Message):
    __slots__ = ("hits", "has_more", "stale")
    class StaleEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: SearchStatsResponse
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[SearchStatsResponse, _Mapping]] = ...) -> None: ...
    HITS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[_router_pb2.SearchHit]
    has_more: bool
    stale: _containers.MessageMap[str, SearchStatsResponse]
    def __init__(self, hits: _Optional[_Iterable[_Union[_router_pb2.SearchHit, _Mapping]]] = ..., has_more: _Optional[bool] = ..., stale: _Optional[_Mapping[str, SearchStatsResponse]] = ...) -> None: ...
