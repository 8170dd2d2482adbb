from db4.v1 import node_pb2 as _node_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateTokenRequest(_message.Message):
    __slots__ = ("role", "name", "requests_per_s", "max_streams", "bytes_per_s")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_S_FIELD_NUMBER: _ClassVar[int]
    MAX_STREAMS_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_S_FIELD_NUMBER: _ClassVar[int]
    role: str
    name: str
    requests_per_s: float
    max_streams: int
    bytes_per_s: float
    def __init__(self, role: _Optional[str] = ..., name: _Optional[str] = ..., requests_per_s: _Optional[float] = ..., max_streams: _Optional[int] = ..., bytes_per_s: _Optional[float] = ...) -> None: ...

class TokenInfo(_message.Message):
    __slots__ = ("id", "role", "name", "created_ms", "requests_per_s", "max_streams", "bytes_per_s")
    ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_S_FIELD_NUMBER: _ClassVar[int]
    MAX_STREAMS_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_S_FIELD_NUMBER: _ClassVar[int]
    id: str
    role: str
    name: str
    created_ms: int
    requests_per_s: float
    max_streams: int
    bytes_per_s: float
    def __init__(self, id: _Optional[str] = ..., role: _Optional[str] = ..., name: _Optional[str] = ..., created_ms: _Optional[int] = ..., requests_per_s: _Optional[float] = ..., max_streams: _Optional[int] = ..., bytes_per_s: _Optional[float] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("info", "token")
    INFO_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    info: TokenInfo
    token: str
    def __init__(self, info: _Optional[_Union[TokenInfo, _Mapping]] = ..., token: _Optional[str] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[TokenInfo]
    def __init__(self, tokens: _Optional[_Iterable[_Union[TokenInfo, _Mapping]]] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DrainNodeRequest(_message.Message):
    __slots__ = ("node_id", "dry_run", "wait", "plan_id")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    dry_run: bool
    wait: bool
    plan_id: str
    def __init__(self, node_id: _Optional[str] = ..., dry_run: _Optional[bool] = ..., wait: _Optional[bool] = ..., plan_id: _Optional[str] = ...) -> None: ...

class RebalanceRequest(_message.Message):
    __slots__ = ("dry_run", "wait", "plan_id")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    wait: bool
    plan_id: str
    def __init__(self, dry_run: _Optional[bool] = ..., wait: _Optional[bool] = ..., plan_id: _Optional[str] = ...) -> None: ...

class GetPlanRequest(_message.Message):
    __slots__ = ("plan_id", "wait")
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    wait: bool
    def __init__(self, plan_id: _Optional[str] = ..., wait: _Optional[bool] = ...) -> None: ...

class PlannedMove(_message.Message):
    __slots__ = ("shard_id", "node_id", "result", "op_id")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    OP_ID_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    node_id: str
    result: str
    op_id: str
    def __init__(self, shard_id: _Optional[str] = ..., node_id: _Optional[str] = ..., result: _Optional[str] = ..., op_id: _Optional[str] = ...) -> None: ...

class PlanStatus(_message.Message):
    __slots__ = ("plan_id", "kind", "node_id", "state", "moves")
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    kind: str
    node_id: str
    state: str
    moves: _containers.RepeatedCompositeFieldContainer[PlannedMove]
    def __init__(self, plan_id: _Optional[str] = ..., kind: _Optional[str] = ..., node_id: _Optional[str] = ..., state: _Optional[str] = ..., moves: _Optional[_Iterable[_Union[PlannedMove, _Mapping]]] = ...) -> None: ...

class SplitShardRequest(_message.Message):
    __slots__ = ("shard_id", "split_token", "node_id", "wait", "op_id")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    OP_ID_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    split_token: int
    node_id: str
    wait: bool
    op_id: str
    def __init__(self, shard_id: _Optional[str] = ..., split_token: _Optional[int] = ..., node_id: _Optional[str] = ..., wait: _Optional[bool] = ..., op_id: _Optional[str] = ...) -> None: ...

class MoveShardRequest(_message.Message):
    __slots__ = ("shard_id", "node_id", "wait", "op_id")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    OP_ID_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    node_id: str
    wait: bool
    op_id: str
    def __init__(self, shard_id: _Optional[str] = ..., node_id: _Optional[str] = ..., wait: _Optional[bool] = ..., op_id: _Optional[str] = ...) -> None: ...

class GetOperationRequest(_message.Message):
    __slots__ = ("op_id", "wait")
    OP_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    op_id: str
    wait: bool
    def __init__(self, op_id: _Optional[str] = ..., wait: _Optional[bool] = ...) -> None: ...

class ListOperationsRequest(_message.Message):
    __slots__ = ("all",)
    ALL_FIELD_NUMBER: _ClassVar[int]
    all: bool
    def __init__(self, all: _Optional[bool] = ...) -> None: ...

class ListOperationsResponse(_message.Message):
    __slots__ = ("operations",)
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    operations: _containers.RepeatedCompositeFieldContainer[OperationStatus]
    def __init__(self, operations: _Optional[_Iterable[_Union[OperationStatus, _Mapping]]] = ...) -> None: ...

class OperationStatus(_message.Message):
    __slots__ = ("op_id", "kind", "state", "source_shard", "source_node", "target_shard", "target_node", "epoch", "moving", "documents", "copied_bytes", "total_bytes", "snapshot_lsn", "applied_lsn", "source_lsn", "fence_lsn", "error", "created_ms", "updated_ms", "abort_requested", "cutovers")
    OP_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SHARD_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NODE_FIELD_NUMBER: _ClassVar[int]
    TARGET_SHARD_FIELD_NUMBER: _ClassVar[int]
    TARGET_NODE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    MOVING_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    COPIED_BYTES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_LSN_FIELD_NUMBER: _ClassVar[int]
    APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_LSN_FIELD_NUMBER: _ClassVar[int]
    FENCE_LSN_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_MS_FIELD_NUMBER: _ClassVar[int]
    ABORT_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    CUTOVERS_FIELD_NUMBER: _ClassVar[int]
    op_id: str
    kind: str
    state: str
    source_shard: str
    source_node: str
    target_shard: str
    target_node: str
    epoch: int
    moving: _containers.RepeatedCompositeFieldContainer[_node_pb2.TokenRange]
    documents: int
    copied_bytes: int
    total_bytes: int
    snapshot_lsn: int
    applied_lsn: int
    source_lsn: int
    fence_lsn: int
    error: str
    created_ms: int
    updated_ms: int
    abort_requested: bool
    cutovers: int
    def __init__(self, op_id: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[str] = ..., source_shard: _Optional[str] = ..., source_node: _Optional[str] = ..., target_shard: _Optional[str] = ..., target_node: _Optional[str] = ..., epoch: _Optional[int] = ..., moving: _Optional[_Iterable[_Union[_node_pb2.TokenRange, _Mapping]]] = ..., documents: _Optional[int] = ..., copied_bytes: _Optional[int] = ..., total_bytes: _Optional[int] = ..., snapshot_lsn: _Optional[int] = ..., applied_lsn: _Optional[int] = ..., source_lsn: _Optional[int] = ..., fence_lsn: _Optional[int] = ..., error: _Optional[str] = ..., created_ms: _Optional[int] = ..., updated_ms: _Optional[int] = ..., abort_requested: _Optional[bool] = ..., cutovers: _Optional[int] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("with_stats", "with_ranges")
    WITH_STATS_FIELD_NUMBER: _ClassVar[int]
    WITH_RANGES_FIELD_NUMBER: _ClassVar[int]
    with_stats: bool
    with_ranges: bool
    def __init__(self, with_stats: _Optional[bool] = ..., with_ranges: _Optional[bool] = ...) -> None: ...

class ShardLoad(_message.Message):
    __slots__ = ("reads_per_s", "writes_per_s", "documents", "bytes", "age_s", "prepared", "in_doubt")
    READS_PER_S_FIELD_NUMBER: _ClassVar[int]
    WRITES_PER_S_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    AGE_S_FIELD_NUMBER: _ClassVar[int]
    PREPARED_FIELD_NUMBER: _ClassVar[int]
    IN_DOUBT_FIELD_NUMBER: _ClassVar[int]
    reads_per_s: float
    writes_per_s: float
    documents: int
    bytes: int
    age_s: float
    prepared: int
    in_doubt: int
    def __init__(self, reads_per_s: _Optional[float] = ..., writes_per_s: _Optional[float] = ..., documents: _Optional[int] = ..., bytes: _Optional[int] = ..., age_s: _Optional[float] = ..., prepared: _Optional[int] = ..., in_doubt: _Optional[int] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("node_id", "address", "alive")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    address: str
    alive: bool
    def __init__(self, node_id: _Optional[str] = ..., address: _Optional[str] = ..., alive: _Optional[bool] = ...) -> None: ...

class ShardStatus(_message.Message):
    __slots__ = ("shard_id", "node_id", "vnodes", "documents", "bytes", "ring_share", "load", "ranges", "hot")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    VNODES_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    RING_SHARE_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    HOT_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    node_id: str
    vnodes: int
    documents: int
    bytes: int
    ring_share: float
    load: ShardLoad
    ranges: _containers.RepeatedCompositeFieldContainer[_node_pb2.TokenRange]
    hot: ShardHot
    def __init__(self, shard_id: _Optional[str] = ..., node_id: _Optional[str] = ..., vnodes: _Optional[int] = ..., documents: _Optional[int] = ..., bytes: _Optional[int] = ..., ring_share: _Optional[float] = ..., load: _Optional[_Union[ShardLoad, _Mapping]] = ..., ranges: _Optional[_Iterable[_Union[_node_pb2.TokenRange, _Mapping]]] = ..., hot: _Optional[_Union[ShardHot, _Mapping]] = ...) -> None: ...

class ShardHot(_message.Message):
    __slots__ = ("age_s", "reason", "ops_per_s", "split_token", "cannot_split")
    AGE_S_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OPS_PER_S_FIELD_NUMBER: _ClassVar[int]
    SPLIT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CANNOT_SPLIT_FIELD_NUMBER: _ClassVar[int]
    age_s: float
    reason: str
    ops_per_s: float
    split_token: int
    cannot_split: str
    def __init__(self, age_s: _Optional[float] = ..., reason: _Optional[str] = ..., ops_per_s: _Optional[float] = ..., split_token: _Optional[int] = ..., cannot_split: _Optional[str] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("cluster", "epoch", "nodes", "shards", "leader", "operations")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    epoch: int
    nodes: _containers.RepeatedCompositeFieldContainer[NodeStatus]
    shards: _containers.RepeatedCompositeFieldContainer[ShardStatus]
    leader: str
    operations: _containers.RepeatedCompositeFieldContainer[OperationStatus]
    def __init__(self, cluster: _Optional[str] = ..., epoch: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[NodeStatus, _Mapping]]] = ..., shards: _Optional[_Iterable[_Union[ShardStatus, _Mapping]]] = ..., leader: _Optional[str] = ..., operations: _Optional[_Iterable[_Union[OperationStatus, _Mapping]]] = ...) -> None: ...

class CdcStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ShardLog(_message.Message):
    __slots__ = ("shard_id", "node_id", "first_lsn", "last_lsn", "entries", "bytes", "checkpoint", "unreachable")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_LSN_FIELD_NUMBER: _ClassVar[int]
    LAST_LSN_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    UNREACHABLE_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    node_id: str
    first_lsn: int
    last_lsn: int
    entries: int
    bytes: int
    checkpoint: int
    unreachable: str
    def __init__(self, shard_id: _Optional[str] = ..., node_id: _Optional[str] = ..., first_lsn: _Optional[int] = ..., last_lsn: _Optional[int] = ..., entries: _Optional[int] = ..., bytes: _Optional[int] = ..., checkpoint: _Optional[int] = ..., unreachable: _Optional[str] = ...) -> None: ...

class ConsumerStatus(_message.Message):
    __slots__ = ("name", "lsn", "lag")
    class LsnEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class LagEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    LSN_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    lsn: _containers.ScalarMap[str, int]
    lag: _containers.ScalarMap[str, int]
    def __init__(self, name: _Optional[str] = ..., lsn: _Optional[_Mapping[str, int]] = ..., lag: _Optional[_Mapping[str, int]] = ...) -> None: ...

class CdcStatusResponse(_message.Message):
    __slots__ = ("shards", "consumers")
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    CONSUMERS_FIELD_NUMBER: _ClassVar[int]
    shards: _containers.RepeatedCompositeFieldContainer[ShardLog]
    consumers: _containers.RepeatedCompositeFieldContainer[ConsumerStatus]
    def __init__(self, shards: _Optional[_Iterable[_Union[ShardLog, _Mapping]]] = ..., consumers: _Optional[_Iterable[_Union[ConsumerStatus, _Mapping]]] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckpointResponse(_message.Message):
    __slots__ = ("shards",)
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    shards: _containers.RepeatedCompositeFieldContainer[_node_pb2.ShardCheckpoint]
    def __init__(self, shards: _Optional[_Iterable[_Union[_node_pb2.ShardCheckpoint, _Mapping]]] = ...) -> None: ...
