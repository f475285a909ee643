"""The service's engine settings reach the Matcher it builds, by name, and bad ones stop the start."""

import inspect

import pytest
from pydantic import ValidationError

from api.settings import MATCHER_SETTINGS, Settings
from matcher import Matcher
from tests.api_helpers import database, service


def test_every_engine_setting_is_a_matcher_parameter_and_round_trips():
    accepted = inspect.signature(Matcher.__init__).parameters
    assert all(name in accepted for name in MATCHER_SETTINGS)
    settings = Settings(encoder="none", encoder_threads=1, pool=12, nearby_limit=50, chunk_size=64, sides="cross",
                        same_category=True, n_threads=2, shard_size=5000)
    matcher = Matcher(**settings.matcher_params())
    assert {name: getattr(matcher, name) for name in MATCHER_SETTINGS} == settings.matcher_params()


def test_engine_settings_from_the_environment_reach_the_services_index(monkeypatch, tmp_path):
    monkeypatch.setenv("DUIJIE_ENCODER_THREADS", "1")
    monkeypatch.setenv("DUIJIE_POOL", "12")
    monkeypatch.setenv("DUIJIE_ENCODER", "none")
    with database("sqlite", tmp_path) as url, service(url) as running:
        running.load_lists()
        matcher = running.app.state.engine.matcher
        assert (matcher.encoder_threads, matcher.pool, matcher.encoder) == (1, 12, "none")
        assert running.match("n-care")  # words alone still match


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("DUIJIE_ENCODER", "bert", "DUIJIE_ENCODER: expected one of e5-small, none, got 'bert'"),
    ("DUIJIE_ENCODER_THREADS", "0", "greater than or equal to 1"),
    ("DUIJIE_SIDES", "both", "DUIJIE_SIDES: expected one of"),
    ("DUIJIE_POOL", "many", "valid integer"),
])
def test_a_bad_engine_setting_names_its_variable(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_the_cli_refuses_a_bad_engine_setting_in_one_line(monkeypatch, tmp_path, capsys):
    from api.cli import main as cli_main

    monkeypatch.setenv("DUIJIE_POOL", "many")
    code = cli_main(["serve", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("duijie: 错误：DUIJIE_POOL:") and "'many'" in err
    assert "Traceback" not in err
