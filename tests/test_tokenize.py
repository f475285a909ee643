import pytest

from matcher.normalize import normalize
from matcher.records import parse_need
from matcher.texts import record_text
from matcher.tokenize import DEFAULT_SYNONYMS, Tokenizer, read_dictionary, read_synonyms


@pytest.fixture(scope="module")
def reference() -> Tokenizer:
    return Tokenizer(backend="jieba")


def test_tokenizer_keeps_domain_terms_whole(reference):
    tokens = reference(normalize("专属网格党群服务中心协助企业办理知识产权质押和融资租赁"))
    for term in ("专属网格", "党群服务中心", "知识产权", "融资租赁"):
        assert term in tokens


def test_tokenizer_folds_synonyms_to_one_term(reference):
    for variant in ("幼托", "托管", "托育"):
        assert reference(normalize(f"社区{variant}服务")) == ["社区", "托育", "服务"]


def test_tokenizer_drops_stopwords_and_punctuation(reference):
    assert reference(normalize("我们需要的是停车位！")) == ["停车"]


def test_tokenizer_splits_numbers_from_units(reference):
    assert reference("0.4-110kv 1.6mpa") == ["0.4", "110", "kv", "1.6", "mpa"]


def test_tokenizer_owns_its_segmenter_not_jiebas_global():
    import jieba

    Tokenizer(backend="jieba")("专属网格")
    assert jieba.dt.FREQ.get("专属网格") is None


def test_tokenizer_rejects_unknown_backend():
    with pytest.raises(ValueError, match="backend: expected one of auto, jieba, rjieba, got 'hanlp'"):
        Tokenizer(backend="hanlp")


@pytest.mark.parametrize("new_words", [False, True])
def test_tokenizer_rjieba_matches_jieba_on_demo_texts(demo_lists, new_words):
    fast, slow = Tokenizer(backend="rjieba", new_words=new_words), Tokenizer(backend="jieba", new_words=new_words)
    texts = [record_text(parse_need({"id": "x", **r})) for r in demo_lists["needs"] + demo_lists["resources"]]
    texts += [normalize(t) for t in ("企業需要０.４-１１０KV送變電檢修", "员工 停车难 ，车位 不足 ！")]
    differing = [t for t in texts if fast(t) != slow(t)]
    assert differing == []


@pytest.mark.parametrize("backend", ["jieba", "rjieba"])
def test_tokenizer_cuts_an_unknown_word_the_same_way_in_every_text(backend):
    # 心塞 is in no dictionary here; jieba's new-word guessing joins it to what follows in one text only.
    plain, guessing = Tokenizer(backend=backend), Tokenizer(backend=backend, new_words=True)
    assert plain("心塞什么意思")[:2] == plain("心塞是什么意思")[:2] == ["心", "塞"]
    assert guessing("心塞什么意思")[0] != guessing("心塞是什么意思")[0]


def test_read_synonyms_maps_variants_to_canonical():
    table = read_synonyms(DEFAULT_SYNONYMS)
    assert table["幼托"] == "托育"
    assert table["泊车"] == "停车"


def test_read_dictionary_reads_word_and_frequency(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("# comment\n专属网格 2000\n托育\n", encoding="utf-8")
    assert read_dictionary(path) == [("专属网格", 2000), ("托育", None)]


def test_tokenizer_keeps_english_words_whole_despite_ascii_synonyms(reference):
    fast = Tokenizer(backend="rjieba")
    for tokenizer in (reference, fast):
        assert tokenizer("<script>alert(1)</script> ip") == ["script", "alert", "1", "script", "知识产权"]
