"""Configuration: defaults, then a TOML file, then CRM_* variables; a wrong value names itself."""

from __future__ import annotations

import pytest

from crm import create_app
from crm.config import DEV_SECRET, SETTINGS, ConfigError, flask_settings, load_config

REDIS_URL = "redis://127.0.0.1:6379/0"
GOOD_SECRET = "s" * 40
PG_URL = "postgresql+psycopg://crm@db.internal:5432/crm"
MASTER_KEYS = "k1:" + "A" * 43 + "="  # 32 bytes, base64


def _file(tmp_path, text: str) -> str:
    path = tmp_path / "crm.toml"
    path.write_text(text)
    return str(path)


def test_the_defaults_need_nothing_set():
    values = load_config(environ={})
    assert values["ENV"] == "development"
    assert values["SECRET_KEY"] == DEV_SECRET
    assert values["DATABASE_URL"].startswith("sqlite:///")
    assert values["MAX_CONTENT_LENGTH"] == 1_048_576
    assert values["IDEMPOTENCY_TTL_HOURS"] == 24
    assert values["IDEMPOTENCY_TTL_HOURS"] == 24
    assert values["SQL_ECHO"] is False
    assert set(values) >= {setting.name for setting in SETTINGS}


def test_an_environment_variable_overrides_a_default_and_is_parsed():
    values = load_config(
        environ={"CRM_MAX_CONTENT_LENGTH": "2048", "CRM_SQL_ECHO": "yes", "CRM_LOG_LEVEL": "DEBUG"}
    )
    assert values["MAX_CONTENT_LENGTH"] == 2048
    assert values["SQL_ECHO"] is True
    assert values["LOG_LEVEL"] == "DEBUG"


def test_a_file_overrides_defaults_and_the_environment_overrides_the_file(tmp_path):
    path = _file(
        tmp_path,
        'LOG_LEVEL = "WARNING"\nIDEMPOTENCY_TTL_HOURS = 48\nPUBLIC_BASE_URL = "https://crm.example"\n',
    )
    values = load_config(environ={"CRM_CONFIG_FILE": path, "CRM_IDEMPOTENCY_TTL_HOURS": "6"})
    assert values["LOG_LEVEL"] == "WARNING"  # from the file
    assert values["PUBLIC_BASE_URL"] == "https://crm.example"  # from the file
    assert values["IDEMPOTENCY_TTL_HOURS"] == 6  # the environment wins
    assert values["SMS_CAP_AGENCY_DAILY"] == 500  # the default stays


def test_the_example_configuration_file_loads_once_the_secret_is_in_the_environment():
    from tests.conftest import ROOT

    environ = {"CRM_CONFIG_FILE": str(ROOT / "config" / "example.toml")}
    with pytest.raises(ConfigError, match="CRM_SECRET_KEY"):
        load_config(environ=environ)  # production, and the secret belongs in the environment
    values = load_config(
        environ=environ | {"CRM_SECRET_KEY": GOOD_SECRET, "CRM_DOCUMENTS_MASTER_KEYS": MASTER_KEYS}
    )
    assert values["ENV"] == "production"
    assert values["DATABASE_URL"].startswith("postgresql")


def test_a_missing_config_file_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="CRM_CONFIG_FILE"):
        load_config(environ={"CRM_CONFIG_FILE": str(tmp_path / "absent.toml")})


def test_an_unknown_key_in_the_file_is_refused_by_name(tmp_path):
    path = _file(tmp_path, 'LOG_LEVEL = "INFO"\nMAX_UPLOAD = 5\nSECRET = "x"\n')
    with pytest.raises(ConfigError, match="MAX_UPLOAD, SECRET"):
        load_config(environ={"CRM_CONFIG_FILE": path})


@pytest.mark.parametrize(
    ("text", "setting"),
    [
        ('MAX_CONTENT_LENGTH = "lots"', "MAX_CONTENT_LENGTH"),
        ("MAX_CONTENT_LENGTH = -5", "MAX_CONTENT_LENGTH"),
        ("IDEMPOTENCY_TTL_HOURS = 0", "IDEMPOTENCY_TTL_HOURS"),
        ('SQL_ECHO = "sometimes"', "SQL_ECHO"),
        ('ENV = "staging"', "ENV"),
        ("IDEMPOTENCY_TTL_HOURS = true", "IDEMPOTENCY_TTL_HOURS"),
        ("LOG_LEVEL = [1, 2]", "LOG_LEVEL"),
        ("IDEMPOTENCY_TTL_HOURS = 2.5", "IDEMPOTENCY_TTL_HOURS"),
    ],
)
def test_a_bad_value_in_the_file_names_the_setting(tmp_path, text, setting):
    path = _file(tmp_path, text + "\n")
    with pytest.raises(ConfigError, match=setting):
        load_config(environ={"CRM_CONFIG_FILE": path})


def test_typed_values_in_the_file_are_kept_as_their_type(tmp_path):
    path = _file(tmp_path, 'SQL_ECHO = true\nIDEMPOTENCY_TTL_HOURS = 50\nSECRET_KEY = "123"\n')
    values = load_config(environ={"CRM_CONFIG_FILE": path})
    assert values["SQL_ECHO"] is True
    assert values["IDEMPOTENCY_TTL_HOURS"] == 50
    assert values["SECRET_KEY"] == "123"


def test_a_file_that_is_not_toml_names_the_file(tmp_path):
    path = _file(tmp_path, "this is = not [toml\n")
    with pytest.raises(ConfigError, match=r"crm\.toml: not valid TOML"):
        load_config(environ={"CRM_CONFIG_FILE": path})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("CRM_MAX_CONTENT_LENGTH", "a lot"),
        ("CRM_MAX_CONTENT_LENGTH", "0"),
        ("CRM_IDEMPOTENCY_TTL_HOURS", "1.5"),
        ("CRM_IDEMPOTENCY_TTL_HOURS", "-1"),
        ("CRM_SQL_ECHO", "maybe"),
        ("CRM_ENV", "prod"),
        ("CRM_RATE_LIMIT_PER_KEY", "lots per minute"),
        ("CRM_RATE_LIMIT_PER_AGENCY", "600 per fortnight"),
        ("CRM_RATE_LIMIT_STORAGE_URL", "memcached://127.0.0.1:11211"),
    ],
)
def test_a_bad_environment_value_names_the_setting(name, raw):
    with pytest.raises(ConfigError, match=f"^{name}:"):
        load_config(environ={name: raw})


def test_production_without_a_secret_refuses_to_start():
    with pytest.raises(ConfigError, match="CRM_SECRET_KEY"):
        load_config(environ={"CRM_ENV": "production", "CRM_DATABASE_URL": PG_URL})


def test_production_with_an_empty_or_short_secret_refuses_to_start():
    for secret in ("", "short"):
        with pytest.raises(ConfigError, match="CRM_SECRET_KEY"):
            load_config(
                environ={
                    "CRM_ENV": "production",
                    "CRM_DATABASE_URL": PG_URL,
                    "CRM_SECRET_KEY": secret,
                }
            )


def test_production_on_sqlite_refuses_to_start():
    with pytest.raises(ConfigError, match="CRM_DATABASE_URL"):
        load_config(environ={"CRM_ENV": "production", "CRM_SECRET_KEY": GOOD_SECRET})


def test_production_with_a_secret_and_postgresql_starts():
    values = load_config(
        environ={
            "CRM_ENV": "production",
            "CRM_SECRET_KEY": GOOD_SECRET,
            "CRM_DATABASE_URL": PG_URL,
            "CRM_RATE_LIMIT_STORAGE_URL": REDIS_URL,
            "CRM_DOCUMENTS_MASTER_KEYS": MASTER_KEYS,
        }
    )
    assert values["ENV"] == "production"


def test_production_with_rate_limits_counted_in_one_workers_memory_refuses_to_start():
    environ = {"CRM_ENV": "production", "CRM_SECRET_KEY": GOOD_SECRET, "CRM_DATABASE_URL": PG_URL}
    with pytest.raises(ConfigError, match=r"^CRM_RATE_LIMIT_STORAGE_URL: production needs Redis"):
        load_config(environ=environ)


def test_production_settings_may_come_from_the_file(tmp_path):
    path = _file(tmp_path, f'ENV = "production"\nSECRET_KEY = "{GOOD_SECRET}"\n')
    with pytest.raises(ConfigError, match="CRM_DATABASE_URL"):
        load_config(environ={"CRM_CONFIG_FILE": path})


def test_a_database_url_that_is_not_a_url_is_refused():
    with pytest.raises(ConfigError, match="CRM_DATABASE_URL"):
        load_config(environ={"CRM_DATABASE_URL": "crm.sqlite3"})


def test_create_app_refuses_to_start_with_a_bad_environment(monkeypatch):
    monkeypatch.setenv("CRM_ENV", "production")
    monkeypatch.delenv("CRM_SECRET_KEY", raising=False)
    monkeypatch.delenv("CRM_CONFIG_FILE", raising=False)
    monkeypatch.setenv("CRM_DATABASE_URL", PG_URL)
    with pytest.raises(ConfigError, match="CRM_SECRET_KEY"):
        create_app()


def test_settings_reach_flask_under_the_names_it_reads():
    values = load_config(environ={"CRM_MAX_CONTENT_LENGTH": "4096", "CRM_SECRET_KEY": "abc"})
    flask = flask_settings(values)
    assert flask["MAX_CONTENT_LENGTH"] == 4096
    assert flask["SECRET_KEY"] == "abc"
    assert flask["SQLALCHEMY_DATABASE_URI"] == values["DATABASE_URL"]
    assert flask["CRM"]["MAX_CONTENT_LENGTH"] == 4096


def test_the_console_cookie_is_not_secure_on_a_plain_http_development_address():
    values = load_config(environ={"CRM_PUBLIC_BASE_URL": "http://127.0.0.1:5000"})
    assert flask_settings(values)["SESSION_COOKIE_SECURE"] is False


def test_the_console_cookie_is_secure_behind_https():
    values = load_config(environ={"CRM_PUBLIC_BASE_URL": "https://crm.hospital.example"})
    settings = flask_settings(values)
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["SESSION_COOKIE_HTTPONLY"] is True
    assert settings["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_the_console_cookie_is_secure_in_production_whatever_the_base_url():
    environ = {
        "CRM_ENV": "production",
        "CRM_SECRET_KEY": GOOD_SECRET,
        "CRM_DATABASE_URL": PG_URL,
        "CRM_RATE_LIMIT_STORAGE_URL": REDIS_URL,
        "CRM_DOCUMENTS_MASTER_KEYS": MASTER_KEYS,
    }
    assert flask_settings(load_config(environ=environ))["SESSION_COOKIE_SECURE"] is True


def test_production_refuses_a_console_cookie_that_is_not_secure():
    environ = {
        "CRM_ENV": "production",
        "CRM_SECRET_KEY": GOOD_SECRET,
        "CRM_DATABASE_URL": PG_URL,
        "CRM_SESSION_COOKIE_SECURE": "false",
    }
    with pytest.raises(ConfigError, match="CRM_SESSION_COOKIE_SECURE"):
        load_config(environ=environ)


def test_the_public_address_loses_a_trailing_slash():
    values = load_config(environ={"CRM_PUBLIC_BASE_URL": "https://care.hospital.example/ "})
    assert values["PUBLIC_BASE_URL"] == "https://care.hospital.example"


@pytest.mark.parametrize("address", ["care.hospital.example", "ftp://care.example", "https://"])
def test_a_public_address_that_is_not_http_stops_the_app(address):
    with pytest.raises(ConfigError, match="CRM_PUBLIC_BASE_URL"):
        load_config(environ={"CRM_PUBLIC_BASE_URL": address})
