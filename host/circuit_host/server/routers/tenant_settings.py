"""The caller's tenant settings (admin only): read with secrets as fingerprints, changed by merge patch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse

from ..auth import Caller, require, state_of
from ..state import ServerState
from .redacted_views import SettingsView

router = APIRouter(prefix="/v1/settings", tags=["tenants"])
# Answers are ``TenantSettings.redacted()`` as they are: ``SettingsView`` documents them, and is not
# used to re-validate them (a plugin's settings may validate only their stored, unredacted form).

PATCH_DESCRIPTION = """A JSON object of settings to change (a JSON merge patch on the top-level settings):
each key given replaces that setting's whole value; `null` returns it to its default, which clears an
optional one. The keys and their types are those of the `GET` answer; secrets are sent as plain strings
and are never shown again. Unknown names and invalid values are refused with 422, naming each
(`settings.<name>: ...`), and nothing is changed."""


@router.get("", response_model=SettingsView, summary="This tenant's settings, secrets shown as fingerprints")
def get_settings(caller: Caller = Depends(require("admin")), state: ServerState = Depends(state_of)) -> JSONResponse:
    return JSONResponse(
        state.platform.tenants.get_settings(caller.tenant_id).redacted(state.platform.tenants.fingerprint)
    )


@router.patch("", response_model=SettingsView, summary="Change settings (audited: who, when, which names)")
def patch_settings(
    changes: dict[str, Any] = Body(
        description=PATCH_DESCRIPTION,
        examples=[{"rate_limit_per_minute": 600, "ghl_location_ids": ["loc-1"]}],
    ),
    caller: Caller = Depends(require("admin")),
    state: ServerState = Depends(state_of),
) -> JSONResponse:
    return JSONResponse(
        state.update_settings(caller.tenant_id, changes, caller.actor).redacted(state.platform.tenants.fingerprint)
    )
