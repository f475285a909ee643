import pytest

from matcher.normalize import normalize, strip_pinyin, to_simplified


def test_normalize_folds_full_width_digits_and_letters():
    assert normalize("需要２０个ＡＩ工位") == "需要20个ai工位"


def test_normalize_converts_traditional_to_simplified():
    assert normalize("園區職工兒童之家") == "园区职工儿童之家"


def test_normalize_strips_toned_pinyin_after_characters():
    assert normalize("專屬網(wǎng)格資源對(duì)接") == "专属网格资源对接"


def test_strip_pinyin_strips_bare_syllable_after_character():
    assert strip_pinyin("项目(de)合作") == "项目合作"


def test_strip_pinyin_keeps_english_in_parentheses():
    assert strip_pinyin("人工智能(AI)企业") == "人工智能(AI)企业"
    assert strip_pinyin("工位 (desk)") == "工位 (desk)"


def test_normalize_folds_chinese_punctuation_and_repeats():
    assert normalize("停车难！！！怎么办？？") == "停车难!怎么办?"
    assert normalize("托育、餐饮。") == "托育,餐饮."


def test_normalize_drops_spaces_between_chinese_characters_only():
    assert normalize("  社区  食堂 open  day ") == "社区食堂 open day"


def test_normalize_removes_control_and_zero_width_characters():
    assert normalize("托\u200b育\ufeff服务\x07") == "托育服务"


def test_to_simplified_leaves_simplified_text_alone():
    assert to_simplified("党群服务中心") == "党群服务中心"


def test_normalize_rejects_non_string():
    with pytest.raises(TypeError, match="text: expected str, got int"):
        normalize(12)
