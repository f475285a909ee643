import numpy as np

from matcher.dense import FAISS_FROM, flat_index, top_dense, top_dense_within


def _unit(rows: int, seed: int) -> np.ndarray:
    values = np.random.default_rng(seed).standard_normal((rows, 16)).astype(np.float32)
    return values / np.linalg.norm(values, axis=1, keepdims=True)


def _pairs(found) -> set[tuple[int, int]]:
    need_row, resource_row = found
    return set(zip(need_row.tolist(), resource_row.tolist(), strict=True))


def test_top_dense_faiss_path_equals_the_numpy_product():
    index, queries = _unit(20_000, 0), _unit(300, 1)
    assert len(queries) * len(index) >= FAISS_FROM  # wide enough for faiss
    calls = []

    def flat():
        calls.append(1)
        return flat_index(index)

    wide = top_dense(queries, index, 5, flat=flat)
    narrow = set()
    for start in range(0, 300, 100):  # 100 x 20k stays under FAISS_FROM: numpy's product
        rows, cols = top_dense(queries[start:start + 100], index, 5)
        narrow |= _pairs((rows + start, cols))
    assert _pairs(wide) == narrow and calls == [1]


def test_top_dense_never_asks_for_the_flat_index_when_numpy_does():
    calls = []
    top_dense(_unit(3, 1), _unit(50, 0), 5, flat=lambda: calls.append(1))
    top_dense_within(_unit(300, 1), _unit(20_000, 0), np.arange(10), 5, flat=lambda: calls.append(1))
    assert calls == []
