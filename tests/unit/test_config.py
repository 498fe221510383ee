"""Config: one frozen object from TOML, then environment, then flags; errors name key and source."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stream.config import Config
from stream.errors import ConfigError


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "riverguard.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- defaults and file loading -----------------------------------------------------------------


def test_defaults_without_a_file_match_the_design():
    cfg = Config.load(None, env={})

    assert cfg.model.spec == "logistic_regression"
    assert cfg.guard.enabled is True
    assert cfg.snapshots.dir == Path("./snapshots")
    assert cfg.snapshots.every_events == 1000
    assert cfg.snapshots.keep == 20
    assert cfg.snapshots.key is None
    assert cfg.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert cfg.kafka.topic == "events"
    assert cfg.kafka.labels_topic is None
    assert cfg.kafka.predictions_topic == "predictions"
    assert cfg.kafka.dead_letter_topic == "events-dlq"
    assert cfg.kafka.group_id == "riverguard"
    assert cfg.admin.host == "127.0.0.1"
    assert cfg.admin.port == 8321
    assert cfg.admin.token is None


def test_the_design_example_file_loads(tmp_path):
    path = write_toml(tmp_path, """
[model]
preset = "hoeffding_tree"
[guard]
enabled = false
[snapshots]
dir = "./snaps"
every_events = 250
keep = 5
key = "s3cret"
[kafka]
bootstrap_servers = "broker:9093"
topic = "orders"
labels_topic = "labels"
predictions_topic = "preds"
dead_letter_topic = "orders-dlq"
group_id = "g1"
[admin]
host = "0.0.0.0"
port = 9000
token = "t0k"
""")

    cfg = Config.load(path, env={})

    assert cfg.model.preset == "hoeffding_tree"
    assert cfg.guard.enabled is False
    assert cfg.snapshots.dir == Path("./snaps")
    assert (cfg.snapshots.every_events, cfg.snapshots.keep) == (250, 5)
    assert cfg.snapshot_key() == b"s3cret"
    assert cfg.kafka.bootstrap_servers == "broker:9093"
    assert (cfg.kafka.topic, cfg.kafka.labels_topic) == ("orders", "labels")
    assert (cfg.kafka.predictions_topic, cfg.kafka.dead_letter_topic) == ("preds", "orders-dlq")
    assert cfg.kafka.group_id == "g1"
    assert (cfg.admin.host, cfg.admin.port, cfg.admin.token) == ("0.0.0.0", 9000, "t0k")


def test_a_factory_is_recorded_as_the_model_spec(tmp_path):
    path = write_toml(tmp_path, '[model]\nfactory = "mypkg.models:build"\n')

    assert Config.load(path, env={}).model.spec == "factory:mypkg.models:build"


def test_missing_file_is_a_config_error_naming_it(tmp_path):
    missing = tmp_path / "nope.toml"

    with pytest.raises(ConfigError, match="nope.toml"):
        Config.load(missing, env={})


def test_invalid_toml_is_a_config_error_naming_the_file(tmp_path):
    path = write_toml(tmp_path, "[model\npreset = 1\n")

    with pytest.raises(ConfigError) as err:
        Config.load(path, env={})
    assert str(path) in str(err.value)
    assert "TOML" in str(err.value)


# -- precedence: file < environment < flags ----------------------------------------------------


def test_environment_overrides_the_file_and_is_converted_to_the_key_type(tmp_path):
    path = write_toml(tmp_path, "[snapshots]\nevery_events = 1000\n")

    cfg = Config.load(path, env={"RIVERGUARD_SNAPSHOTS_EVERY_EVENTS": "50"})

    assert cfg.snapshots.every_events == 50
    assert isinstance(cfg.snapshots.every_events, int)


def test_environment_keys_with_underscores_and_booleans(tmp_path):
    env = {
        "RIVERGUARD_KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
        "RIVERGUARD_GUARD_ENABLED": "false",
        "RIVERGUARD_ADMIN_TOKEN": "from-env",
        "RIVERGUARD_SNAPSHOTS_KEY": "env-key",
    }

    cfg = Config.load(None, env=env)

    assert cfg.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert cfg.guard.enabled is False
    assert cfg.admin.token == "from-env"
    assert cfg.snapshot_key() == b"env-key"


def test_unrelated_environment_variables_are_ignored():
    cfg = Config.load(None, env={"PATH": "/bin", "RIVERGUARD": "x", "HOME": "/root"})

    assert cfg == Config.load(None, env={})


def test_flags_beat_environment_which_beats_the_file(tmp_path):
    path = write_toml(tmp_path, '[kafka]\ntopic = "file-topic"\ngroup_id = "file-group"\n'
                                '[admin]\nport = 1111\n')
    env = {"RIVERGUARD_KAFKA_TOPIC": "env-topic", "RIVERGUARD_ADMIN_PORT": "2222"}

    cfg = Config.load(path, env=env, overrides={"kafka": {"topic": "flag-topic"}, "admin": {"port": None}})

    assert cfg.kafka.topic == "flag-topic"       # flag over env over file
    assert cfg.admin.port == 2222                # a flag left unset (None) does not override
    assert cfg.kafka.group_id == "file-group"    # untouched by env and flags


def test_os_environment_is_used_when_no_env_is_given(monkeypatch):
    monkeypatch.setenv("RIVERGUARD_SNAPSHOTS_KEEP", "7")

    assert Config.load(None).snapshots.keep == 7


# -- errors name the key and where it came from ------------------------------------------------


@pytest.mark.parametrize("text, named", [
    ("[modle]\npreset = \"x\"\n", ["modle"]),  # unknown section
    ("[snapshots]\nevery_event = 10\n", ["every_event", "snapshots"]),  # unknown key
    ("[snapshots]\nevery_events = 0\n", ["every_events"]),  # bad value
])
def test_an_error_in_the_file_names_the_key_and_the_file(tmp_path, text, named):
    path = write_toml(tmp_path, text)

    with pytest.raises(ConfigError) as err:
        Config.load(path, env={})
    message = str(err.value)
    assert all(name in message for name in named)
    assert str(path) in message


def test_unknown_key_from_environment_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="RIVERGUARD_SNAPSHOTS_EVERYTHING"):
        Config.load(None, env={"RIVERGUARD_SNAPSHOTS_EVERYTHING": "1"})


def test_unknown_section_from_environment_names_the_variable():
    with pytest.raises(ConfigError, match="RIVERGUARD_NOPE_KEY"):
        Config.load(None, env={"RIVERGUARD_NOPE_KEY": "1"})


def test_bad_value_from_environment_names_key_and_variable(tmp_path):
    path = write_toml(tmp_path, "[admin]\nport = 8000\n")

    with pytest.raises(ConfigError) as err:
        Config.load(path, env={"RIVERGUARD_ADMIN_PORT": "abc"})
    message = str(err.value)
    assert "port" in message
    assert "RIVERGUARD_ADMIN_PORT" in message
    assert "'abc'" in message
    assert str(path) not in message  # the file's value was fine: do not blame it


def test_bad_value_from_a_flag_names_the_flag_as_source(tmp_path):
    with pytest.raises(ConfigError) as err:
        Config.load(None, env={}, overrides={"admin": {"port": 70000}})
    assert "port" in str(err.value)
    assert "command-line flag" in str(err.value)


def test_a_section_that_is_not_a_table_is_refused(tmp_path):
    path = write_toml(tmp_path, 'model = "logistic_regression"\n')

    with pytest.raises(ConfigError) as err:
        Config.load(path, env={})
    assert "[model]" in str(err.value)
    assert str(path) in str(err.value)


def test_preset_and_factory_together_are_refused(tmp_path):
    path = write_toml(tmp_path, '[model]\npreset = "gaussian_nb"\nfactory = "m:build"\n')

    with pytest.raises(ConfigError) as err:
        Config.load(path, env={})
    assert "preset" in str(err.value) and "factory" in str(err.value)
    assert str(path) in str(err.value)


def test_config_errors_exit_with_the_config_exit_code():
    assert ConfigError.exit_code == 2


# -- the built object --------------------------------------------------------------------------


def test_config_is_frozen():
    cfg = Config.load(None, env={})

    with pytest.raises(ValidationError):
        cfg.snapshots = cfg.snapshots  # type: ignore[misc]
    with pytest.raises(ValidationError):
        cfg.snapshots.every_events = 5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        cfg.admin.port = 1  # type: ignore[misc]
    assert cfg.snapshots.every_events == 1000


def test_missing_snapshot_key_is_a_config_error_that_says_how_to_set_it():
    cfg = Config.load(None, env={})

    with pytest.raises(ConfigError, match="RIVERGUARD_SNAPSHOTS_KEY"):
        cfg.snapshot_key()


def test_empty_snapshot_key_counts_as_missing():
    cfg = Config.load(None, env={"RIVERGUARD_SNAPSHOTS_KEY": ""})

    with pytest.raises(ConfigError):
        cfg.snapshot_key()


# -- [guard]: what the guard's own constructors check is a config error too --------------------


@pytest.mark.parametrize("text, named", [
    ('[guard]\ndetector = "hddm_x"\n', ["[guard] detector", "'hddm_x'", "adwin"]),
    ('[guard]\npolicy = "wait"\n', ["[guard] policy", "'wait'", "stay"]),
    ("[guard]\nmin_increase = 0\n", ["min_increase"]),
    ('[guard]\ndetector_params = { delta = "small" }\n', ["[guard] detector_params", "adwin"]),
    ("[guard]\ndetector_params = { bogus = 1 }\n", ["bogus", "delta"]),  # what it accepts
])
def test_a_bad_guard_setting_is_refused_at_load_naming_key_and_file(tmp_path, text, named):
    path = write_toml(tmp_path, text)

    with pytest.raises(ConfigError) as err:
        Config.load(path, env={})
    message = str(err.value)
    assert all(name in message for name in named), message
    assert str(path) in message


def test_a_bad_detector_from_the_environment_names_the_variable(tmp_path):
    path = write_toml(tmp_path, '[guard]\npolicy = "stay"\n')

    with pytest.raises(ConfigError) as err:
        Config.load(path, env={"RIVERGUARD_GUARD_DETECTOR": "adwinn"})
    assert "environment variable RIVERGUARD_GUARD_DETECTOR: [guard] detector" in str(err.value)
    assert str(path) not in str(err.value)


@pytest.mark.parametrize("detector", ["ddm", "hddm_w"])
def test_a_binary_detector_for_a_regressor_is_refused_once_the_model_is_known(tmp_path, detector):
    # 0/1-loss detectors cannot watch a regressor's absolute errors; only the model tells the task
    # (a factory may build either), so the check comes when the guard is built for it.
    path = write_toml(tmp_path, f'[model]\npreset = "linear_regression"\n[guard]\ndetector = "{detector}"\n')
    config = Config.load(path, env={})

    with pytest.raises(ConfigError) as err:
        config.build_guard(classifier=False)
    message = str(err.value)
    assert f"{path}: [guard] detector: '{detector}'" in message
    assert "linear_regression" in message and "adwin, page_hinkley, kswin" in message
    assert config.build_guard(classifier=True).concept is not None  # fine for a classifier
