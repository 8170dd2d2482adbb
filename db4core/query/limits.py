"""Page-size validation shared by the router, the node and the client."""

from __future__ import annotations

from typing import Any, Final

from db4core.errors import InvalidArgumentError

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 10_000


def validate_limit(limit: Any, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """Return limit (default when None) if it is an int in [1, maximum], else raise."""
    if limit is None:
        return default
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise InvalidArgumentError(f"limit must be an integer, got {type(limit).__name__}")
    if not 1 <= limit <= maximum:
        raise InvalidArgumentError(f"limit must be between 1 and {maximum}, got {limit}")
    return limit
