"""Who the caller's key is: its tenant and scopes, so a client (the dashboard) can offer only what
the key may do. The server still checks every call."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from ..auth import SCOPES, Caller, require

router = APIRouter(prefix="/v1/whoami", tags=["tenants"])


class WhoAmI(BaseModel):
    tenant_id: str
    key_id: str
    scopes: list[str]  # as granted; admin implies every other scope


@router.get("", response_model=WhoAmI, summary="The calling key's tenant and scopes")
def whoami(caller: Caller = Depends(require("read"))) -> WhoAmI:
    return WhoAmI(tenant_id=caller.tenant_id, key_id=caller.key_id, scopes=[s for s in SCOPES if s in caller.scopes])
