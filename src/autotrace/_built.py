"""What ``install()`` builds from its settings, besides the pipeline: the redactor and the tenants'
credentials resolver (the CLI's ``check`` builds the latter too)."""

from __future__ import annotations

from typing import Any

from .config import ConfigError, Settings
from .export.credentials import CredentialsError, CredentialsResolver, coerce_resolver
from .export.redaction import Redactor


def built_redactor(setting: Any) -> Redactor:
    """The redactor the ``redact`` setting asks for: all detectors, none, some by name, hooks."""
    if setting is True or setting == "all":
        return Redactor()
    if setting is False or setting in ("none", "off", "false"):
        return Redactor(detectors=[])
    if callable(setting):
        return Redactor(hooks=[setting])
    if isinstance(setting, str):
        return Redactor(detectors=[part.strip() for part in setting.split(",") if part.strip()])
    items = list(setting)
    hooks = [item for item in items if callable(item)]
    names = [item for item in items if isinstance(item, str)]
    return Redactor(detectors=names if names else None, hooks=hooks)


def credentials_resolver(settings: Settings) -> CredentialsResolver | None:
    """The tenants' credentials, when Langfuse is on; a value that cannot be one is a ``ConfigError``
    naming the setting, as any other invalid setting is."""
    if not (settings.enabled and settings.langfuse_enabled):
        return None
    try:
        return coerce_resolver(settings.credentials)
    except CredentialsError as exc:
        raise ConfigError(f"setting 'credentials': {exc}") from None
