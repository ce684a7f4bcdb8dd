"""Bundles: upload (validated, content-addressed, immutable) and list."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends

from .. import deploy_path
from ..auth import Caller, require, state_of
from ..state import ServerState
from .models import BundleModel

router = APIRouter(prefix="/v1/bundles", tags=["deploys"])


@router.post("", response_model=BundleModel, status_code=201, summary="Upload a bundle (.circuit zip)")
def upload_bundle(
    data: bytes = Body(..., media_type="application/zip"),
    caller: Caller = Depends(require("deploy")),
    state: ServerState = Depends(state_of),
) -> BundleModel:
    info = deploy_path.upload_bundle(state.platform, state.runtime, caller.tenant_id, data, caller.actor)
    return BundleModel(sha256=info.sha256, name=info.name, version=info.version, uploaded_at=info.uploaded_at)


@router.get("", response_model=list[BundleModel], summary="List uploaded bundles")
def list_bundles(
    caller: Caller = Depends(require("read")), state: ServerState = Depends(state_of)
) -> list[BundleModel]:
    return [
        BundleModel(sha256=b.sha256, name=b.name, version=b.version, uploaded_at=b.uploaded_at)
        for b in state.platform.bundles.list_bundles(caller.tenant_id)
    ]
