from pathlib import Path

import pytest

from tokiflow.config import SETTINGS, ConfigError, effective_settings, load_settings


def test_it_uses_the_defaults_when_nothing_is_given() -> None:
    s = load_settings({}, env={})
    assert s.data_dir == Path("./tokiflow-data")
    assert (s.host, s.port, s.ping_body_limit, s.log_format) == ("127.0.0.1", 8000, 10000, "text")
    assert s.public_url == "http://127.0.0.1:8000"
    assert all(src == "default" for src in s.sources.values())


def test_it_prefers_flags_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "tokiflow.toml"
    cfg.write_text('[tokiflow]\nport = 7001\nhost = "0.0.0.0"\nlog_level = "debug"\n')
    env = {"TOKIFLOW_PORT": "7002", "TOKIFLOW_HOST": "10.0.0.1"}
    s = load_settings({"port": "7003"}, env=env, config_file=str(cfg))
    assert s.port == 7003 and s.sources["port"] == "flag"
    assert s.host == "10.0.0.1" and s.sources["host"] == "env TOKIFLOW_HOST"
    assert s.log_level == "debug" and s.sources["log_level"].startswith("file ")
    assert s.ping_body_limit == 10000 and s.sources["ping_body_limit"] == "default"


def test_it_reads_the_config_file_named_in_the_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("ping_body_limit = 500\n")
    s = load_settings({}, env={"TOKIFLOW_CONFIG": str(cfg)})
    assert s.ping_body_limit == 500


def test_it_reads_secrets_from_a_file_named_by_the_env(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("s3cret-value\n")
    s = load_settings({}, env={"TOKIFLOW_SECRET_KEY_FILE": str(secret)})
    assert s.secret_key == "s3cret-value"
    assert s.sources["secret_key"] == "env TOKIFLOW_SECRET_KEY_FILE"


def test_it_masks_secrets_when_showing_the_settings() -> None:
    s = load_settings({}, env={"TOKIFLOW_SECRET_KEY": "hunter2"})
    shown = {name: value for name, value, _ in effective_settings(s)}
    assert shown["secret_key"] == "***"
    assert "hunter2" not in repr(effective_settings(s))


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({"port": "eighty"}, {}, "setting port (flag): 'eighty'"),
        ({"port": "70000"}, {}, "between 0 and 65535"),
        ({}, {"TOKIFLOW_LOG_FORMAT": "xml"}, "expected one of text, json"),
        ({}, {"TOKIFLOW_RETENTION": "soon"}, "invalid duration"),
        ({}, {"TOKIFLOW_SECRET_KEY_FILE": "/nonexistent/key"}, "TOKIFLOW_SECRET_KEY_FILE"),
    ],
)
def test_it_names_the_setting_and_reason_for_bad_values(
    flags: dict[str, str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(flags, env=env)


def test_it_refuses_unknown_settings_in_the_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({}, env={}, config_file=str(cfg))


def test_it_refuses_a_config_file_that_is_not_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("port = = 1\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings({}, env={}, config_file=str(cfg))


def test_every_setting_has_help_and_a_default_that_parses() -> None:
    for setting in SETTINGS:
        assert setting.help.strip(), setting.name
        setting.parse(setting.default)
