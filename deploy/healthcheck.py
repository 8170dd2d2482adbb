"""Container health check: exit 0 when the process's health port answers SERVING.

Asks grpc.health.v1.Health/Check on 127.0.0.1:$DB4_HEALTH_PORT (the plaintext listener that
serves the health service only) for $DB4_HEALTH_SERVICE ("" = the whole process). The two
messages are encoded by hand so that the image needs no grpcio-health-checking package.
"""

from __future__ import annotations

import os
import sys

import grpc

SERVING = 1


def request(service: str) -> bytes:
    """HealthCheckRequest{service}: field 1, length-delimited (names are under 128 bytes)."""
    name = service.encode()
    return b"\x0a" + bytes([len(name)]) + name if name else b""


def status(response: bytes) -> int:
    """HealthCheckResponse.status: field 1, a varint (absent = 0, UNKNOWN)."""
    return response[1] if len(response) >= 2 and response[0] == 0x08 else 0


def main() -> int:
    """Check once; print why on failure."""
    port = int(os.environ.get("DB4_HEALTH_PORT") or 0)
    if port <= 0:
        print("no health port: set DB4_HEALTH_PORT", file=sys.stderr)
        return 1
    service = os.environ.get("DB4_HEALTH_SERVICE", "")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            answer = status(check(request(service), timeout=2))
        except grpc.RpcError as err:
            print(f"health check failed: {err.code().name}", file=sys.stderr)
            return 1
    if answer != SERVING:
        print(f"not serving (status {answer})", file=sys.stderr)
    return 0 if answer == SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
