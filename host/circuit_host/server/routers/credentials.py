"""Named credentials of the caller's tenant (admin only): endpoints and secret headers circuits reach
as ``callout:NAME/path``. Header values are write-only; reads show their fingerprints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from ...execution.callout_policy import CREDENTIAL_PATTERN
from ...platform import TenantSettings
from ..auth import Caller, require, state_of
from ..state import ServerState
from .redacted_views import CredentialView

router = APIRouter(prefix="/v1/credentials", tags=["tenants"])
CredentialName = Annotated[str, Path(pattern=CREDENTIAL_PATTERN, description="as circuits declare it")]


class CredentialRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="base URL, e.g. https://api.example.com/v2; circuits' paths stay under it")
    headers: dict[str, str] = Field(
        default_factory=dict, description="secret headers added to every callout, e.g. {Authorization: Bearer ...}"
    )


def _view(state: ServerState, tenant_id: str, settings: TenantSettings, name: str) -> dict[str, Any]:
    shown: dict[str, Any] = settings.redacted(state.platform.tenants.fingerprint)["named_credentials"][name]
    return {"name": name, **shown, "used_by": state.credential_users(tenant_id, name)}


@router.get("", response_model=list[CredentialView], summary="Named credentials (header values as fingerprints)")
def list_credentials(
    caller: Caller = Depends(require("admin")), state: ServerState = Depends(state_of)
) -> list[dict[str, Any]]:
    settings = state.platform.tenants.get_settings(caller.tenant_id)
    return [_view(state, caller.tenant_id, settings, name) for name in sorted(settings.named_credentials)]


@router.put("/{name}", response_model=CredentialView, summary="Create or replace a named credential")
def put_credential(
    name: CredentialName,
    body: CredentialRequest,
    caller: Caller = Depends(require("admin")),
    state: ServerState = Depends(state_of),
) -> dict[str, Any]:
    settings = state.put_credential(caller.tenant_id, name, body.url, body.headers, caller.actor)
    return _view(state, caller.tenant_id, settings, name)


@router.delete(
    "/{name}",
    status_code=204,
    summary="Delete a named credential",
    description="404 when it does not exist; 409, naming them, while active circuits in any environment declare it.",
)
def delete_credential(
    name: CredentialName, caller: Caller = Depends(require("admin")), state: ServerState = Depends(state_of)
) -> None:
    state.delete_credential(caller.tenant_id, name, caller.actor)
