"""When the controller calls a shard hot: over the ops threshold for the whole window, or over a
size limit; a dip under the threshold starts the window again."""

from __future__ import annotations

from db4router.controller import HotController, HotLimits


def load(ops: float, documents: int = 10, size: int = 4096) -> dict:
    return {"reads_per_s": ops / 2, "writes_per_s": ops / 2, "documents": documents,
            "bytes": size}


def controller(**limits) -> HotController:
    return HotController(None, None, None, HotLimits(**limits))  # type: ignore[arg-type]


def test_hot_only_after_a_whole_window_over_the_threshold():
    c = controller(ops_per_s=100, window_s=10)
    assert c.reason("s1", load(150), now=0.0) is None
    assert c.reason("s1", load(150), now=9.0) is None
    reason = c.reason("s1", load(150), now=10.0)
    assert reason is not None and "150 ops/s over the threshold of 100 for 10 s" in reason


def test_a_dip_under_the_threshold_starts_the_window_again():
    c = controller(ops_per_s=100, window_s=10)
    c.reason("s1", load(150), now=0.0)
    assert c.reason("s1", load(50), now=5.0) is None
    assert c.reason("s1", load(150), now=8.0) is None
    assert c.reason("s1", load(150), now=17.0) is None
    assert c.reason("s1", load(150), now=18.0) is not None
    assert c.reason("s2", load(150), now=18.0) is None  # each shard has its own window


def test_size_limits_mark_at_once_and_zero_means_none():
    c = controller(ops_per_s=100, window_s=10, documents=1000, bytes=1 << 20)
    assert "1001 documents, over the limit of 1000" in c.reason("s1", load(0, 1001), now=0.0)
    assert "bytes, over the limit" in c.reason("s1", load(0, 10, 2 << 20), now=0.0)
    unlimited = controller(ops_per_s=100, window_s=10)
    assert unlimited.reason("s1", load(0, 10**9, 10**12), now=0.0) is None
