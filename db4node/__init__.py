"""db4 storage node: many shard databases (apsw) behind the internal Node gRPC service."""
