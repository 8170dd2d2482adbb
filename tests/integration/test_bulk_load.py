"""bulk_load and `db4 import` through a real router and 8 shards: every document of a stream
loaded in batches, progress in input order, and on a failure exactly the input before the
failed batch stays loaded (later batches that committed are undone)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys

import pytest

from db4client import AsyncClient, errors


def stream(n: int, start: int = 0):
    """A generator: bulk_load must not need a list."""
    for i in range(start, start + n):
        yield {"$id": f"d{i:05}", "n": i, "tags": ["x"] * (i % 3)}


def test_bulk_load_writes_a_stream_in_batches_with_progress(client, coll_name, cluster):
    seen: list[int] = []
    result = client.bulk_load(coll_name, stream(2_345), batch_size=100, progress=seen.append,
                              in_flight=3)
    assert (result.loaded, result.batches) == (2_345, 24)
    assert seen == [min(100 * k, 2_345) for k in range(1, 25)]
    coll = client.collection(coll_name)
    assert coll.count() == 2_345
    got = coll.get_many([f"d{i:05}" for i in range(0, 2_345, 97)])
    assert [d["n"] for d in got] == list(range(0, 2_345, 97))
    assert all(d["$version"] == 1 and d["$createdAt"] for d in got)
    assert cluster.change_count(coll_name) == 2_345


def test_a_failed_batch_leaves_exactly_the_input_before_it(client, coll_name, cluster):
    coll = client.collection(coll_name)
    coll.create({"$id": "d00250", "n": -1})  # batch 2 (200-299) will collide with it
    with pytest.raises(errors.AlreadyExistsError) as err:
        client.bulk_load(coll_name, stream(1_000), batch_size=100, in_flight=4)
    assert err.value.loaded == 200
    assert "the first 200 documents are loaded" in err.value.message
    assert coll.count() == 201
    assert sorted(d["n"] for d in coll.iterate()) == [-1, *range(200)]


def test_a_bad_document_is_named_by_its_position_in_the_whole_input(client, coll_name):
    docs = [{"$id": f"d{i}", "n": i} for i in range(30)]
    docs[17] = {"$bad": 1}
    with pytest.raises(errors.InvalidArgumentError, match=r"documents\[17\]") as err:
        client.bulk_load(coll_name, docs, batch_size=5, in_flight=1)
    assert err.value.loaded == 15
    assert client.collection(coll_name).count() == 15


def test_bulk_load_refuses_bad_options(client, coll_name):
    for kwargs in ({"batch_size": 0}, {"batch_size": 10_001}, {"in_flight": 0},
                   {"batch_size": True}):
        with pytest.raises(errors.InvalidArgumentError):
            client.bulk_load(coll_name, stream(3), **kwargs)
    with pytest.raises(errors.InvalidArgumentError, match="iterable"):
        client.bulk_load(coll_name, {"$id": "x"})
    assert client.collection(coll_name).count() == 0


def test_async_bulk_load(cluster, coll_name):
    async def run():
        async with AsyncClient(cluster.address) as client:
            seen: list[int] = []
            result = await client.bulk_load(coll_name, stream(450), batch_size=100,
                                            progress=seen.append)
            assert result.loaded == 450 and seen[-1] == 450
            assert await client.collection(coll_name).count() == 450
            await client.collection(coll_name).create({"$id": "d00600", "n": -1})
            with pytest.raises(errors.AlreadyExistsError) as err:
                await client.bulk_load(coll_name, stream(300, start=450), batch_size=50)
            assert err.value.loaded == 150
            assert await client.collection(coll_name).count() == 450 + 1 + 150

    asyncio.run(run())


def db4(*argv: str, router: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "db4client.cli", *argv, "--router", router],
                          input=stdin, capture_output=True, text=True, timeout=120)


def test_db4_import_loads_a_jsonl_file(client, coll_name, cluster, tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in stream(1_200)) + "\n\n")
    out = db4("import", coll_name, str(path), "--batch-size", "500", router=cluster.address)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["loaded"], summary["batches"]) == (1_200, 3)
    assert "1200 documents" in out.stderr  # the last progress line
    assert client.collection(coll_name).count() == 1_200
    more = db4("import", coll_name, "-", router=cluster.address,
               stdin=json.dumps({"$id": "extra", "n": 1}) + "\n")
    assert more.returncode == 0, more.stderr
    assert json.loads(more.stdout)["loaded"] == 1


def test_db4_import_names_a_bad_line_and_keeps_the_batches_before_it(client, coll_name,
                                                                     cluster, tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(d) for d in stream(30)]
    lines[24] = '{"n": NaN}'
    path.write_text("\n".join(lines) + "\n")
    out = db4("import", coll_name, str(path), "--batch-size", "10", "--in-flight", "1",
              router=cluster.address)
    assert out.returncode == 1
    assert "INVALID_ARGUMENT" in out.stderr and "line 25" in out.stderr
    assert "the first 20 documents are loaded" in out.stderr
    assert client.collection(coll_name).count() == 20
    missing = db4("import", coll_name, str(tmp_path / "nope.jsonl"), router=cluster.address)
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_db4_import_names_the_file_line_of_a_document_the_server_refuses(client, coll_name,
                                                                         cluster, tmp_path):
    """A document the router or a node refuses (no partition value, a `$id` given twice, an
    id taken) is named by its line in the file, blank lines counted, as a bad JSON line is."""
    client.create_collection(coll_name, partition_key="tenantId")
    path = tmp_path / "pk.jsonl"
    path.write_text('{"tenantId": "a"}\n\n\n{"tenantId": "b"}\n{"name": "no partition value"}\n')
    out = db4("import", coll_name, str(path), router=cluster.address)
    assert out.returncode == 1
    assert f"{path} line 5:" in out.stderr and "partition key" in out.stderr, out.stderr
    assert "documents[" not in out.stderr, out.stderr
    twice = tmp_path / "twice.jsonl"
    twice.write_text('{"$id": "f1", "tenantId": "a"}\n\n{"$id": "f1", "tenantId": "a"}\n')
    out = db4("import", f"{coll_name}x", str(twice), router=cluster.address)
    assert out.returncode == 1
    assert f"{twice} line 3:" in out.stderr and "line 1" in out.stderr, out.stderr


def test_ctrl_c_stops_db4_import_saying_through_which_line_it_loaded(client, coll_name,
                                                                    cluster, tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in stream(100_000)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "db4client.cli", "import", coll_name, str(path), "--batch-size",
         "500", "--in-flight", "2", "--router", cluster.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the first progress line: a batch is loaded
        assert "documents" in first, first
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    found = re.search(r"interrupted: the first (\d+) documents \(through line (\d+)\) are "
                      r"loaded, none after them", err)
    assert found, err
    loaded = int(found.group(1))
    assert 0 < loaded < 100_000 and int(found.group(2)) == loaded
    coll = client.collection(coll_name)
    assert coll.count() == loaded
    assert coll.get(f"d{loaded - 1:05}") is not None and coll.get(f"d{loaded:05}") is None
