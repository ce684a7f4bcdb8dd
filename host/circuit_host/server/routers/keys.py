"""API keys of the caller's tenant (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ...platform import ApiKey
from ..auth import Caller, require, state_of
from ..state import ServerState
from .models import KeyModel, KeyRequest, NewKey

router = APIRouter(prefix="/v1/keys", tags=["tenants"])


def _model(key: ApiKey) -> KeyModel:
    return KeyModel(
        id=key.id,
        scopes=sorted(key.scopes),
        label=key.label,
        created_at=key.created_at,
        revoked=key.revoked_at is not None,
    )


@router.post("", response_model=NewKey, status_code=201, summary="Create an API key")
def create_key(
    body: KeyRequest, caller: Caller = Depends(require("admin")), state: ServerState = Depends(state_of)
) -> NewKey:
    key, plaintext = state.platform.tenants.create_api_key(caller.tenant_id, set(body.scopes), body.label)
    return NewKey(**_model(key).model_dump(), key=plaintext)


@router.get("", response_model=list[KeyModel], summary="List API keys")
def list_keys(caller: Caller = Depends(require("admin")), state: ServerState = Depends(state_of)) -> list[KeyModel]:
    return [_model(k) for k in state.platform.tenants.list_api_keys(caller.tenant_id)]


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key")
def revoke_key(key_id: str, caller: Caller = Depends(require("admin")), state: ServerState = Depends(state_of)) -> None:
    state.platform.tenants.revoke_api_key(caller.tenant_id, key_id)  # NotFound -> 404
