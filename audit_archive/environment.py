"""How a variable is declared and read from the environment (pydantic-settings), for the
groups in settings.py. Pure: reads only the files a secret's ``X_FILE`` names.

The environment's rules: a variable unset or blank takes its default; values are read
without surrounding whitespace (unless declared ``exact``); a secret or credential X may
instead come from the file ``X_FILE`` names, its content less one trailing newline (LF or
CRLF), as Docker and Kubernetes mount secrets. X and X_FILE both set, or a file that cannot
be read or is empty, is a ConfigError naming the variable and the path, never the content.
A pydantic error is reworded as a ConfigError naming the variable, without a secret's value.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from audit_archive.errors import ConfigError
from audit_archive.format.layout import format_day, parse_day

FILE_SUFFIX = "_FILE"  # X_FILE names a file holding the value of the secret X

# -- how a variable is declared -------------------------------------------------------------


def variable(name: str, default: Any, **bounds: Any) -> Any:
    """A variable read as is (trimmed; blank = the default)."""
    return Field(default, alias=name, **bounds)


def credential(name: str, default: Any) -> Any:
    """A variable that may carry a credential: kept out of repr, and may be read from the
    file ``<name>_FILE`` names (Docker and Kubernetes secrets)."""
    return Field(default, alias=name, repr=False, json_schema_extra={"file": True})


def secret(name: str, default: Any, *, exact: bool = False) -> Any:
    """A secret (type it ``SecretStr``): never echoed, kept out of repr, and may be read
    from ``<name>_FILE``. ``exact``: the value is not trimmed (its rule decides)."""
    extra = {"file": True, "secret": True, "exact": exact}
    return Field(default, alias=name, repr=False, json_schema_extra=extra)


def _flag(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value.lower() in ("true", "1", "yes", "on"):
        return True
    if value.lower() in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value.lower()!r}")


def _whole(value: Any) -> Any:
    """Python's whole numbers ("1_000", " 7 "), not pydantic's wider ones ("1.0")."""
    if not isinstance(value, str):
        return value
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None


def _day(value: Any) -> Any:
    return parse_day(value) if isinstance(value, str) else value


Flag = Annotated[bool, BeforeValidator(_flag)]
Whole = Annotated[int, BeforeValidator(_whole)]
Day = Annotated[dt.date, BeforeValidator(_day)]


# -- where the values come from --------------------------------------------------------------


def read_text_file(path: str, source: str) -> str:
    """A file's text; ConfigError naming ``source`` and the path (never the content)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise ConfigError(source, f"cannot read {path}: {reason}") from None


def _from_file(name: str, env: Mapping[str, str]) -> str | None:
    """The value of ``name`` from the file ``name``_FILE names (one trailing newline, LF or
    CRLF, removed: what `echo` and editors add), or None when that variable is unset."""
    path = (env.get(name + FILE_SUFFIX) or "").strip()
    if not path:
        return None
    if (env.get(name) or "").strip():
        raise ConfigError(
            name,
            f"is set and so is {name}{FILE_SUFFIX}: set one of them (the value, or the file "
            "that holds it)",
        )
    text = read_text_file(path, name + FILE_SUFFIX)
    if not text.strip():
        raise ConfigError(name + FILE_SUFFIX, f"{path} is empty: it should hold {name}")
    return text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text


def environment_value(name: str, field: FieldInfo, env: Mapping[str, str]) -> str | None:
    """One variable's text by the environment's rules, or None for its default."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    raw = _from_file(name, env) if extra.get("file") else None
    raw = env.get(name) if raw is None else raw
    if raw is None or (not raw.strip() and not extra.get("blank")):
        return None
    return raw if extra.get("exact") else raw.strip()


class EnvironmentSource(PydanticBaseSettingsSource):
    """pydantic-settings' source for the archive: the declared variables of a mapping (the
    process environment by default) by the rules above, keyed by variable name."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str] | None = None):
        super().__init__(settings_cls)
        self.env = os.environ if env is None else env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = field.alias or field_name
        return environment_value(name, field, self.env), name, False

    def __call__(self) -> dict[str, Any]:
        out = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, name, _ = self.get_field_value(field, field_name)
            if value is not None:
                out[name] = value
        return out


class Variables(BaseSettings):
    """The base of each group: frozen, read by variable name from ``EnvironmentSource``."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", validate_by_name=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *_: Any, **__: Any):  # type: ignore[override]
        # Built directly (tests, callers), a group holds what it is given; the environment
        # is read only by ``read``, from the mapping it is handed.
        return (init_settings,)

    @classmethod
    def read(cls, env: Mapping[str, str] | None = None) -> Any:
        """The group from ``env`` (default: the process environment); ConfigError on the
        first bad variable, naming it."""
        try:
            return cls(**EnvironmentSource(cls, env)())
        except ValidationError as e:
            raise _config_error(cls, e) from None


def _config_error(cls: type[BaseSettings], error: ValidationError) -> ConfigError:
    """pydantic's first error, worded as the archive words it; a secret's value is never
    part of the message (pydantic's own text would carry it as ``input_value``)."""
    first = error.errors(include_url=False)[0]
    name = str(first["loc"][0]) if first["loc"] else "configuration"
    kind, value = first["type"], first.get("input")
    field = next((f for f in cls.model_fields.values() if f.alias == name), None)
    if kind == "value_error":
        return ConfigError(name, str(first["ctx"]["error"]))
    if field is not None and is_kind(field, "secret"):
        return ConfigError(name, "is not valid (the value is not shown: it is a secret)")
    if kind in ("greater_than_equal", "less_than_equal") and field is not None:
        lo = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
        hi = next((m.le for m in field.metadata if hasattr(m, "le")), None)
        bounds = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
        return ConfigError(name, f"must be {bounds}, got {value}")
    return ConfigError(name, first["msg"])


def declared(*groups: type[BaseSettings]) -> dict[str, FieldInfo]:
    """Every variable the groups declare, by name, in declaration order."""
    return {f.alias: f for g in groups for f in g.model_fields.values() if f.alias}


def env_text(value: Any) -> str:
    """A default as it is written in the environment ("" for none)."""
    if value is None or value == ():
        return ""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    return format_day(value) if isinstance(value, dt.date) else str(value)


def is_kind(field: FieldInfo, key: str) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get(key))
