"""Turning `address`, `token` and `tls` into a gRPC target, credentials and call metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from db4rpc.options import CHANNEL_OPTIONS, check_loopback

DEFAULT_ADDRESS = "127.0.0.1:7400"
TLS_FILES = ("root_certificates", "private_key", "certificate_chain")
# Optional `tls` key: the name the server certificate is checked against (e.g. "localhost"
# when the certificate does not list 127.0.0.1).
TLS_SERVER_NAME = "server_name"
# No BDP probing: each stream's receive window stays at 64 KiB, so an iterator the program stops
# reading holds the router to one page in flight, instead of letting gRPC pull ~4 MiB ahead
# per stream that the router can neither see nor stop. Measured on loopback: a 36 MiB page and a
# 20k-document iterate take the same time either way.
SDK_CHANNEL_OPTIONS = (*CHANNEL_OPTIONS, ("grpc.http2.bdp_probe", 0))


def split_address(address: str, secure: bool = False) -> tuple[str, int]:
    """'127.0.0.1:7400' or '[::1]:7400' -> (host, port); only loopback hosts are accepted,
    unless the channel is `secure` (TLS): a token must never cross a network in the clear."""
    if not isinstance(address, str) or ":" not in address:
        raise ValueError(f"address must be 'host:port', got {address!r}")
    host, _, port_text = address.rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"address {address!r} has no valid port") from None
    if not 0 < port < 65536:
        raise ValueError(f"address {address!r} has a port outside 1-65535")
    return (host if secure else check_loopback(host)), port


def _read_pem(tls: dict[str, Any], key: str) -> bytes | None:
    """The bytes of one PEM file named in the `tls` dict, None when not given."""
    path = tls.get(key)
    return Path(path).read_bytes() if path else None


def credentials(tls: bool | dict[str, Any] | None) -> grpc.ChannelCredentials | None:
    """Channel credentials for `tls` (True: system roots; dict: PEM paths), None for plaintext."""
    if tls is None or tls is False:
        return None
    if tls is True:
        return grpc.ssl_channel_credentials()
    if not isinstance(tls, dict):
        raise ValueError(f"tls must be True or a dict of PEM paths, got {type(tls).__name__}")
    unknown = set(tls) - set(TLS_FILES) - {TLS_SERVER_NAME}
    if unknown:
        raise ValueError(f"unknown tls keys {sorted(unknown)}; expected {list(TLS_FILES)}")
    return grpc.ssl_channel_credentials(*(_read_pem(tls, key) for key in TLS_FILES))


def channel_options(tls: bool | dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """Shared channel options, plus the TLS name override when one was given."""
    if isinstance(tls, dict) and tls.get(TLS_SERVER_NAME):
        return (*SDK_CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", tls[TLS_SERVER_NAME]))
    return SDK_CHANNEL_OPTIONS


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """Per-call metadata: the bearer token when one was given."""
    if token is None:
        return ()
    if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
        raise ValueError("token must be a non-empty string without line breaks")
    return (("authorization", f"Bearer {token}"),)


def open_channel(address: str, tls: bool | dict[str, Any] | None) -> grpc.Channel:
    """A blocking channel to a router."""
    creds, options = credentials(tls), channel_options(tls)
    if creds is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, creds, options=options)


def open_aio_channel(address: str, tls: bool | dict[str, Any] | None) -> grpc.aio.Channel:
    """An asyncio channel to a router."""
    creds, options = credentials(tls), channel_options(tls)
    if creds is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, creds, options=options)
