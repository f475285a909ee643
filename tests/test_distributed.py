"""The batch on a local Dask cluster gives the in-process answer: same pairs, same scores."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from matcher import Matcher
from matcher.distributed import DaskBackend, cluster, parse_cluster, placement
from matcher.encode import EmbeddingCache


@pytest.fixture(scope="module")
def lists(repeated_lists):
    return repeated_lists


@pytest.fixture(scope="module")
def client():
    with cluster("local:2") as client:
        yield client


# One shard and four without an encoder; four with e5-small, where the shards' dense searches must merge
# (e5-small in one shard added nothing the others miss, and 24 s to a suite kept under ten minutes). The
# e5-small case encodes every distinct text twice (here and on the workers), so it takes the lists' first
# 100 need texts and 150 resource texts, still repeated: a third of the encoding.
@pytest.mark.parametrize(("encoder", "shard_size"), [("none", 250_000), ("none", 400), ("e5-small", 120)])
def test_cluster_equals_in_process(lists, client, encoder, shard_size):
    grids, needs, resources = lists
    if encoder != "none":
        needs = [n for n in needs if int(n["id"].split("-")[0].lstrip("N") or 0) <= 100]
        resources = [r for r in resources if int(r["id"].split("-")[0].lstrip("R") or 0) <= 150]
    settings = {"encoder": encoder, "chunk_size": 250, "shard_size": shard_size}
    alone = Matcher(**settings, embedding_cache=EmbeddingCache()).fit(resources, needs, grids=grids)
    expected = alone.assign(needs, k=10)
    backend = DaskBackend(client)
    spread = Matcher(**settings, embedding_cache=EmbeddingCache()).fit(resources, needs, grids=grids,
                                                                       backend=backend)
    got = spread.assign(needs, k=10, backend=backend)
    assert got == expected
    assert len(got.pairs) > (150 if encoder != "none" else 500)
    assert len(backend.shards) == len(alone.shards_) == (1 if shard_size > len(resources) else 4)


def test_each_worker_holds_its_share_of_the_shards_not_the_index(lists, client):
    grids, needs, resources = lists
    # 5 shards; chunks of needs far smaller than a shard, as in a city (1,000 needs against 250,000 rows)
    matcher = Matcher(encoder="none", shard_size=300, chunk_size=20).fit(resources, needs, grids=grids)
    backend = DaskBackend(client)
    matcher.assign(needs[:300], backend=backend)
    held: dict[str, int] = {}
    for holders in client.who_has(backend.shards).values():
        for worker in holders:
            held[worker] = held.get(worker, 0) + 1
    assert sorted(held.values()) == [2, 3]  # dealt round the two workers


def test_a_worker_killed_mid_batch_does_not_change_the_answer(lists, client):
    grids, needs, resources = lists
    # Shards of 400 rows: a shard dies with its worker and is made again from its recipe.
    matcher = Matcher(encoder="none", chunk_size=50, shard_size=400).fit(resources, needs, grids=grids)
    expected = matcher.assign(needs, k=10)
    pids = list(client.run(os.getpid).values())
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(got=matcher.assign(needs, k=10,
                                                                              backend=DaskBackend(client))))
    runner.start()
    time.sleep(0.3)
    os.kill(pids[0], signal.SIGKILL)  # a worker this test's cluster started; Dask reruns its tasks elsewhere
    runner.join(120)
    assert result["got"] == expected
    client.wait_for_workers(2, timeout=60)  # the nanny brings a new worker up


def test_shards_are_dealt_round_the_workers_and_spare_workers_share_them():
    assert [p["workers"] for p in placement(["a", "b"], 5)] == [["a"], ["b"], ["a"], ["b"], ["a"]]
    assert [p["workers"] for p in placement(["a", "b", "c"], 1)] == [["a", "b", "c"]]
    assert [p["workers"] for p in placement(["a", "b", "c", "d"], 2)] == [["a", "c"], ["b", "d"]]
    assert all(p["allow_other_workers"] for p in placement(["a"], 3))  # a lost worker's shard is made elsewhere


def test_cluster_spec_is_checked(tmp_path, capsys):
    assert parse_cluster("local:3") == ("local", 3)
    assert parse_cluster("tcp://10.0.0.5:8786") == ("address", "tcp://10.0.0.5:8786")
    for bad in ("local:0", "local:x", "10.0.0.5", "tcp://nohost"):
        with pytest.raises(ValueError, match="cluster: expected"):
            parse_cluster(bad)
    from matcher.cli import main

    assert main(["demo", "--cluster", "local:zero", "--out", str(tmp_path / "x.csv"), "--quiet"]) == 1
    assert "cluster: expected local:N with N from 1 to 256, got 'local:zero'" in capsys.readouterr().err


def test_service_batch_on_a_cluster_equals_in_process(tmp_path):
    from tests.api_helpers import database, service
    from tests.test_api_match import _wait_for_job

    answers = []
    for scheduler in ("", "local:2"):
        folder = tmp_path / (scheduler.replace(":", "") or "alone")
        folder.mkdir()
        with database("sqlite", folder) as url, service(url, dask_scheduler=scheduler) as svc:
            svc.load_lists()
            job = _wait_for_job(svc, svc.call("POST", "/v1/match/batch", json={}).json()["id"])
            assert job["status"] == "done" and job["result"]["cluster"] == (scheduler or None)
            assert job["progress"] == 1.0 and job["result"]["workers"] == (2 if scheduler else None)
            pending = svc.call("GET", "/v1/suggestions", params={"status": "pending", "limit": 500}).json()["items"]
            answers.append(sorted((s["need_id"], s["resource_id"], s["score"]) for s in pending))
    assert answers[0] == answers[1] and answers[0]
