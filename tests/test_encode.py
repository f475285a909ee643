import numpy as np
import pytest

from matcher.encode import MAX_CHARS, E5Small, EmbeddingCache, embed, get_encoder, text_key


class CountingEncoder:
    """A stand-in encoder: one-hot rows by text length, and a log of what it was asked to encode."""

    name, dim = "counting", 8

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on_call = fail_on_call

    def encode(self, texts):
        self.calls.append(list(texts))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise RuntimeError("encoder stopped")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        out[np.arange(len(texts)), [len(t) % self.dim for t in texts]] = 1.0
        return out


def test_embed_encodes_each_text_once_across_calls():
    encoder, cache = CountingEncoder(), EmbeddingCache("counting", 8)
    first = embed(["托育", "停车", "托育"], encoder, cache)
    again = embed(["停车", "托育"], encoder, cache)
    assert encoder.calls == [["托育", "停车"]]
    np.testing.assert_array_equal(first[[1, 0]], again)


def test_embed_resumes_from_the_cache_after_an_interrupted_encode():
    texts = [f"需求{i}" for i in range(10)]
    encoder, cache = CountingEncoder(fail_on_call=2), EmbeddingCache("counting", 8)
    with pytest.raises(RuntimeError, match="encoder stopped"):
        embed(texts, encoder, cache, chunk=4)
    assert len(cache) == 4  # the first chunk landed before the failure
    resumed = CountingEncoder()
    embed(texts, resumed, cache, chunk=4)
    assert [t for call in resumed.calls for t in call] == texts[4:]


def test_embed_cuts_long_texts_before_encoding():
    encoder, cache = CountingEncoder(), EmbeddingCache("counting", 8)
    embed(["长" * (MAX_CHARS + 50)], encoder, cache)
    assert len(encoder.calls[0][0]) == MAX_CHARS


def test_cache_arrays_round_trip_without_pickle(tmp_path):
    cache = EmbeddingCache("counting", 8)
    embed(["托育", "停车"], CountingEncoder(), cache)
    np.savez(tmp_path / "e.npz", **cache.arrays())
    again = EmbeddingCache("counting", 8)
    with np.load(tmp_path / "e.npz", allow_pickle=False) as npz:
        assert npz["keys"].dtype.kind == "S" and npz["vectors"].dtype == np.float32
        again.load_arrays(npz["keys"], npz["vectors"])
    key = text_key("counting", "托育")
    np.testing.assert_array_equal(again.get(key), cache.get(key))
    assert again.take_fresh()[0] == []  # loaded entries are not new: nothing to store again


def test_cache_rejects_vectors_of_the_wrong_width():
    with pytest.raises(ValueError, match=r"vectors: expected shape \(1, 8\), got \(1, 3\)"):
        EmbeddingCache("counting", 8).put(["k"], np.zeros((1, 3)))


def test_text_key_depends_on_model_and_text():
    assert text_key("e5-small", "托育") == text_key("e5-small", "托育")
    assert len({text_key("e5-small", "托育"), text_key("other", "托育"), text_key("e5-small", "停车")}) == 3


def test_get_encoder_rejects_an_unknown_name():
    with pytest.raises(ValueError, match=r"encoder: expected one of e5-small, none, got 'bert'"):
        get_encoder("bert")
    assert get_encoder("none") is None


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_e5_encoder_threads_must_be_a_positive_integer(threads):
    with pytest.raises(ValueError, match="encoder_threads: expected an integer >= 1"):
        E5Small(n_threads=threads)


def test_e5_encoder_gives_unit_float32_rows_that_carry_meaning():
    encoder = get_encoder("e5-small", n_threads=1)
    need, care, loan = encoder.encode(["放暑假了娃白天没人看", "职工子女暑期托管班", "小微企业应急转贷和信用贷款"])
    assert need.dtype == np.float32 and need.shape == (384,)
    np.testing.assert_allclose([np.linalg.norm(v) for v in (need, care, loan)], 1.0, rtol=1e-5)
    assert need @ care > need @ loan  # no shared word, yet the day-care class is nearer in meaning
    assert encoder.encode([]).shape == (0, 384)


def test_limit_blas_sets_the_blas_pools_and_refuses_bad_counts():
    from threadpoolctl import threadpool_info

    from matcher.threads import limit_blas

    limit_blas(1)
    assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
    with pytest.raises(ValueError, match="blas_threads: expected an integer >= 1, got 0"):
        limit_blas(0)
