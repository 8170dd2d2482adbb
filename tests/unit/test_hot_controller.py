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


def test_a_sample_is_uniform_and_bounded():
    import random

    from db4node.loadmeter import TokenSample
    sample = TokenSample(size=100, rng=random.Random(1))
    for token in range(10_000):
        sample.add(token)
    assert len(sample.items) == 100 and sample.seen == 10_000
    summary = sample.summary()
    assert 3_000 < summary["median_token"] < 7_000  # the median of 0..9999, roughly
    assert summary["top_share"] == 0.01
    assert TokenSample().summary() is None


def test_split_advice_names_the_median_or_the_one_hot_key():
    from db4node.loadmeter import TokenSample
    from db4router.controller import split_advice
    spread = TokenSample()
    for token in (10, 20, 30, 40, 50):
        spread.add(token)
    assert split_advice(spread.summary()) == {"split_token": 30}
    one_key = TokenSample()
    for token in [7] * 90 + [1] * 10:
        one_key.add(token)
    advice = split_advice(one_key.summary())
    assert "token 7" in advice["cannot_split"] and "90%" in advice["cannot_split"]
    assert split_advice(None) == {}


def test_the_meter_samples_point_operations_per_shard_and_starts_afresh():
    from db4node.loadmeter import LoadMeter
    meter = LoadMeter()
    meter.read("s1", 2, [5, 6])
    meter.write("s1", 1, [7])
    meter.read("s2")  # a scatter query: counted, not sampled
    reads, writes, samples, elapsed = meter.take()
    assert reads == {"s1": 2, "s2": 1} and writes == {"s1": 1} and elapsed > 0
    assert sorted(samples["s1"].items) == [5, 6, 7] and "s2" not in samples
    assert meter.take()[0] == {}
