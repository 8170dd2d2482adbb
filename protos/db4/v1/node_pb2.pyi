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
OP_KIND_UNSPECIFIED: OpKind
OP_KIND_CREATE: OpKind
OP_KIND_UPDATE: OpKind
OP_KIND_REPLACE: OpKind
OP_KIND_UPSERT: OpKind
OP_KIND_DELETE: OpKind

class WriteOp(_message.Message):
    __slots__ = ("kind", "collection", "id", "token", "body", "expected_version", "partition_key")
    KIND_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_KEY_FIELD_NUMBER: _ClassVar[int]
    kind: OpKind
    collection: str
    id: str
    token: int
    body: bytes
    expected_version: int
    partition_key: str
    def __init__(self, kind: _Optional[_Union[OpKind, str]] = ..., collection: _Optional[str] = ..., id: _Optional[str] = ..., token: _Optional[int] = ..., body: _Optional[bytes] = ..., expected_version: _Optional[int] = ..., partition_key: _Optional[str] = ...) -> None: ...

class WriteRequest(_message.Message):
    __slots__ = ("epoch", "shard_id", "ops", "txid")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    TXID_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    shard_id: str
    ops: _containers.RepeatedCompositeFieldContainer[WriteOp]
    txid: str
    def __init__(self, epoch: _Optional[int] = ..., shard_id: _Optional[str] = ..., ops: _Optional[_Iterable[_Union[WriteOp, _Mapping]]] = ..., txid: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("shard_ids",)
    SHARD_IDS_FIELD_NUMBER: _ClassVar[int]
    shard_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, shard_ids: _Optional[_Iterable[str]] = ...) -> None: ...

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
