"""Channel and server options used by every part."""

from __future__ import annotations

# 64 MiB: a batch of documents may reach the 1 MiB-per-document limit many times over; batches
# are packed under MAX_MESSAGE_BYTES by the sender, with headroom below the transport limit.
TRANSPORT_MAX_BYTES = 64 << 20
MAX_MESSAGE_BYTES = 16 << 20

CHANNEL_OPTIONS = (
    ("grpc.max_send_message_length", TRANSPORT_MAX_BYTES),
    ("grpc.max_receive_message_length", TRANSPORT_MAX_BYTES),
    ("grpc.enable_retries", 0),
    # A restarted node must be reachable again within a second, not after grpc's default
    # exponential backoff (up to two minutes) has run its course.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)

SERVER_OPTIONS = (
    ("grpc.max_send_message_length", TRANSPORT_MAX_BYTES),
    ("grpc.max_receive_message_length", TRANSPORT_MAX_BYTES),
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
)

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def check_loopback(host: str) -> str:
    """Only loopback addresses are allowed to listen or connect in this build."""
    bare = host.strip("[]")
    if bare not in LOOPBACK:
        raise ValueError(f"address {host!r} is not a loopback address (127.0.0.1, ::1)")
    return host
