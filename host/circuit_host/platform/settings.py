"""Per-tenant settings: rate limit, limit ceilings, retention, and each webhook source's own settings.

Storage and operators see one flat object (``{"rate_limit_per_minute": ..., "ghl_public_key": ...}``).
The host's own settings are fields here; the rest belong to the registered webhook sources
(``CrmPlugin.configuration``), each validated by its source's model when set, so a tenant can
never be configured with a key its verifier would fail to load. ``section(Model)`` answers a
source's typed part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    SerializationInfo,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from ..circuitdb.schema import (
    CEILING_CUSTOM_FIELDS_PER_OBJECT,
    CEILING_CUSTOM_OBJECTS,
    MAX_CUSTOM_FIELDS_PER_OBJECT,
    MAX_CUSTOM_OBJECTS,
)
from ..connectors.crm import crm_registry
from ..connectors.crm.system_of_record import validate_selection
from ..errors import Rejected
from ..execution.callout_policy import CREDENTIAL_PATTERN, NamedCredential
from ..execution.limits import MIB, LimitsProfile

S = TypeVar("S", bound=BaseModel)
_CORE_ERROR_TYPES = frozenset(get_args(ErrorType))
_MAX_REPORTED_ERRORS = 20
CredentialName = Annotated[str, StringConstraints(pattern=CREDENTIAL_PATTERN)]


class TenantSettings(BaseModel):
    """What an operator can configure per tenant; defaults are safe for a new tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit_per_minute: int = Field(1000, ge=1, le=10_000_000)
    max_limits: LimitsProfile = Field(default_factory=LimitsProfile, description="Ceiling for manifest overrides.")
    coverage_threshold: int = Field(75, ge=0, le=100, description="Minimum test coverage (%) to deploy.")
    named_credentials: dict[CredentialName, NamedCredential] = Field(
        default_factory=dict,
        description="Endpoints and secret headers reached as `callout:NAME/path` by circuits declaring NAME.",
    )
    callout_allowed_networks: tuple[IPvAnyNetwork, ...] = Field(
        (),
        description="Private networks (e.g. 10.1.2.0/24) callouts may reach; loopback, private, link-local "
        "and reserved addresses are refused otherwise.",
    )
    coalesce_window_ms: int = Field(
        0,
        ge=0,
        le=60_000,
        description="How long a stored webhook waits before its apply job runs, gathering the changes of the "
        "same object and action that arrive meanwhile into batches of up to 200 records.",
    )
    execution_retention_days: int = Field(30, ge=1, le=3650)
    max_job_chain_depth: int = Field(
        5, ge=1, le=50, description="How many queueable jobs deep a chain may go (jobs.enqueue from a job's job...)."
    )
    batch_max_attempts: int = Field(
        5,
        ge=1,
        le=100,
        description="Attempts at each job of a batch (start, a chunk, finish; a worker that died mid-job counts "
        "as one) before it is dead: a dead chunk is counted failed and the batch goes on, a dead start or "
        "finish fails the batch. A batch keeps the value it started with.",
    )
    max_stored_executions: int = Field(
        100_000, ge=1, le=100_000_000, description="Executions kept; the housekeeping purge deletes the oldest beyond."
    )
    max_stored_log_bytes: int = Field(
        1024 * MIB, ge=MIB, le=1024 * 1024 * MIB, description="Debug-log bytes kept; the oldest executions beyond go."
    )
    max_request_bytes: int = Field(1 * MIB, ge=1024, le=64 * MIB)
    max_custom_objects: int = Field(
        MAX_CUSTOM_OBJECTS,
        ge=0,
        le=CEILING_CUSTOM_OBJECTS,
        description="Custom objects each environment's schema may have; a deploy or field past it is refused.",
    )
    max_custom_fields_per_object: int = Field(
        MAX_CUSTOM_FIELDS_PER_OBJECT,
        ge=0,
        le=CEILING_CUSTOM_FIELDS_PER_OBJECT,
        description="Custom (__c) fields each object may have, standard objects too; past it a deploy is refused.",
    )
    system_of_record: dict[str, Annotated[SerializeAsAny[BaseModel], BeforeValidator(validate_selection)]] = Field(
        default_factory=dict,
        description='Per environment, where its records live: {"production": {"crm": "gohighlevel", '
        '"location_id": ..., "api_key": ..., "base_url": ...}}; unset environments use CircuitDB. '
        "See connectors/crm/system_of_record.py.",
    )

    @field_validator("system_of_record")
    @classmethod
    def _known_environments(cls, value: dict[str, BaseModel]) -> dict[str, BaseModel]:
        unknown = [env for env in value if env not in ("dev", "staging", "production")]
        if unknown:
            raise ValueError(f"unknown environment {unknown[0][:40]!r} (expected dev, staging or production)")
        return value

    _sections: dict[type[BaseModel], BaseModel] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _with_sections(cls, data: Any, handler: ModelWrapValidatorHandler[TenantSettings]) -> TenantSettings:
        """Hand each source's keys to its model and the rest to this one; report every error as a flat key."""
        if not isinstance(data, Mapping):
            return handler(data)
        models = crm_registry.configurations()
        claimed = {name for model in models for name in model.model_fields}
        errors: list[InitErrorDetails] = []
        settings: TenantSettings | None = None
        try:
            settings = handler({k: v for k, v in data.items() if k not in claimed})
        except ValidationError as exc:
            errors.extend(_details(exc))
        sections: dict[type[BaseModel], BaseModel] = {}
        for model in models:
            try:
                sections[model] = model.model_validate({k: data[k] for k in model.model_fields if k in data})
            except ValidationError as exc:
                errors.extend(_details(exc))
        if errors or settings is None:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        settings._sections = sections
        return settings

    @model_serializer(mode="wrap")
    def _flat(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for section in self._sections.values():
            data.update(section.model_dump(mode=info.mode))
        return data

    def section(self, model: type[S]) -> S:
        """A webhook source's settings (``CrmPlugin.configuration``), defaults if it was registered since."""
        found = self._sections.get(model)
        return found if isinstance(found, model) else model()

    def to_storage(self) -> dict[str, Any]:
        """JSON for the database, every secret included wherever a model holds it (``model_dump`` masks them)."""
        return self._walk(_secret_value)

    def redacted(self, fingerprint: Callable[[str], str]) -> dict[str, Any]:
        """The settings as an operator may read them: every secret as ``{"set": true, "fingerprint": ...}``
        (or ``{"set": false}``), found from the models, so a new secret field is never shown; a named
        credential's URL without its password. ``fingerprint`` is the host's keyed one (``SecretBox``)."""

        def view(secret: SecretStr | None) -> dict[str, Any]:
            if secret is None:
                return {"set": False}
            return {"set": True, "fingerprint": fingerprint(secret.get_secret_value())}

        data = self._walk(view)
        for name, credential in self.named_credentials.items():
            data["named_credentials"][name]["url"] = credential.shown_url
        return data

    @classmethod
    def validated(cls, data: dict[str, Any]) -> TenantSettings:
        """Validate settings from an operator, as ``Rejected`` naming every offending setting."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors()[:_MAX_REPORTED_ERRORS]:
                where = ".".join(str(p) for p in err["loc"])
                message = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
                problems.append(f"settings.{where}: {message.removeprefix('Value error, ')}")
            raise Rejected("; ".join(problems)) from None

    def _walk(self, on_secret: Callable[[SecretStr | None], Any]) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        for model in (self, *self._sections.values()):
            for name, field in type(model).model_fields.items():
                data[name] = _replace_secrets(getattr(model, name), data[name], field.annotation, on_secret)
        return data


def changed_settings(before: TenantSettings, after: TenantSettings) -> list[str]:
    """The names (dotted, e.g. ``named_credentials.census.headers.Authorization``) whose values differ;
    secrets are compared by fingerprint, so the result never depends on how they are stored."""
    return _changed_paths(before._walk(_secret_mark), after._walk(_secret_mark), "")


def holds_secret(annotation: Any, seen: frozenset[type] = frozenset()) -> bool:
    """Whether a field of this type is, or contains, a ``SecretStr``."""
    if isinstance(annotation, type):
        if issubclass(annotation, SecretStr):
            return True
        if issubclass(annotation, BaseModel) and annotation not in seen:
            inner = seen | {annotation}
            return any(holds_secret(f.annotation, inner) for f in annotation.model_fields.values())
    return any(holds_secret(arg, seen) for arg in get_args(annotation))


def _replace_secrets(value: Any, dumped: Any, annotation: Any, on_secret: Callable[[SecretStr | None], Any]) -> Any:
    """``dumped`` (the JSON dump of ``value``) with each secret in ``value`` replaced by ``on_secret(it)``."""
    if isinstance(value, SecretStr):
        return on_secret(value)
    if value is None:
        return on_secret(None) if holds_secret(annotation) else dumped
    if isinstance(value, BaseModel):
        if not holds_secret(type(value)):
            return dumped
        return {
            **dumped,
            **{
                name: _replace_secrets(getattr(value, name), dumped[name], field.annotation, on_secret)
                for name, field in type(value).model_fields.items()
            },
        }
    if isinstance(value, Mapping) and isinstance(dumped, Mapping):
        pairs = zip(value.values(), dumped.items(), strict=True)
        return {key: _replace_secrets(v, d, Any, on_secret) for v, (key, d) in pairs}
    if isinstance(value, list | tuple) and isinstance(dumped, list):
        return [_replace_secrets(v, d, Any, on_secret) for v, d in zip(value, dumped, strict=True)]
    return dumped


def _secret_value(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _secret_mark(secret: SecretStr | None) -> tuple[str, str | None]:
    """A secret as a comparable leaf (not a dict, so ``_changed_paths`` does not descend into it)."""
    return ("secret", None if secret is None else hashlib.sha256(secret.get_secret_value().encode()).hexdigest())


def _changed_paths(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str) -> list[str]:
    changed: list[str] = []
    for key in dict.fromkeys([*before, *after]):
        old, new = before.get(key, _ABSENT), after.get(key, _ABSENT)
        if isinstance(old, dict) and isinstance(new, dict):
            changed.extend(_changed_paths(old, new, f"{prefix}{key}."))
        elif old != new:
            changed.append(f"{prefix}{key}")
    return changed


_ABSENT = object()


def _details(exc: ValidationError) -> list[InitErrorDetails]:
    """``exc``'s errors in the form a new ``ValidationError`` is built from."""
    details: list[InitErrorDetails] = []
    for err in exc.errors():
        if err["type"] not in _CORE_ERROR_TYPES:  # a validator's own error (an IP network's): keep its words
            custom = PydanticCustomError(err["type"], err["msg"].replace("{", "{{").replace("}", "}}"))
            details.append(InitErrorDetails(type=custom, loc=err["loc"], input=err["input"]))
            continue
        detail = InitErrorDetails(type=err["type"], loc=err["loc"], input=err["input"])
        if "ctx" in err:
            detail["ctx"] = err["ctx"]
        details.append(detail)
    return details
