"""Settings fail at start with a message naming the variable."""

from __future__ import annotations

from datetime import timedelta

import pytest

from worker.settings import ConfigError, load_settings

REQUIRED = {
    "ZZY_BASE_URL": "http://127.0.0.1:8900",
    "ZZY_PARTNER_ID": "9258",
    "ZZY_SIGN_KEY": "zzy-sandbox-signkey",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("ZZY_BASE_URL", "ZZY_PARTNER_ID", "ZZY_SIGN_KEY", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_defaults_are_the_embedded_mode(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.zzy_partner_id == 9258
    assert settings.database_url.startswith("sqlite:///var/")
    assert settings.redis_url is None and not settings.uses_redis
    assert settings.callback_path == "/callbacks/zzy"
    assert settings.callback_signing_path == "/callbacks/zzy"
    assert settings.price_window_days == 60
    assert settings.price_max_age == timedelta(hours=6)
    assert settings.price_refresh_share == 0.5
    assert settings.price_refresh_policy == "adaptive"


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_each_missing_setting_is_named(env: pytest.MonkeyPatch, name: str) -> None:
    env.delenv(name)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert f"{name}: is required" in str(error.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ZZY_PARTNER_ID", "abc"),
        ("ZZY_PARTNER_ID", "-1"),
        ("ZZY_BASE_URL", "testapi.juyingzhiye.com"),
        ("ZZY_SIGN_KEY", ""),
        ("PRICE_WINDOW_DAYS", "0"),
        ("CALLBACK_PATH", "callbacks/zzy"),
        ("PRICE_MAX_AGE", "often"),
        ("SUPPLIER_RATE_LIMIT", "0"),
        ("PRICE_REFRESH_SHARE", "0"),
        ("PRICE_REFRESH_SHARE", "1.5"),
        ("PRICE_REFRESH_POLICY", "fastest"),
    ],
)
def test_malformed_setting_is_named(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_sign_key_never_prints(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert "zzy-sandbox-signkey" not in repr(settings)
    assert "zzy-sandbox-signkey" not in str(settings.model_dump())


def test_price_refresh_policy_is_case_insensitive(env: pytest.MonkeyPatch) -> None:
    env.setenv("PRICE_REFRESH_POLICY", " Uniform")
    assert load_settings().price_refresh_policy == "uniform"


def test_price_max_age_accepts_seconds(env: pytest.MonkeyPatch) -> None:
    env.setenv("PRICE_MAX_AGE", "3600")
    assert load_settings().price_max_age == timedelta(hours=1)


def test_the_read_api_needs_no_supplier_secrets(env: pytest.MonkeyPatch, tmp_path: object) -> None:
    from catalog_api.app import create_app
    from worker.settings import ReadApiSettings

    for name in REQUIRED:
        env.delenv(name)
    env.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/api.db")
    env.setenv("CATALOG_API_ANONYMOUS", "true")
    settings = load_settings(ReadApiSettings)
    assert not hasattr(settings, "zzy_sign_key")
    app = create_app()
    assert app.test_client().get("/healthz").status_code == 200
