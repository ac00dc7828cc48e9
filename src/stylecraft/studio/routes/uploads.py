"""Uploads: checked by decoding them (a few at a time, since decoding a large picture takes hundreds of MB),
and kept at full size (a job may paint them at any size up to the studio's pixel limit) under ids made here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse

from ... import images
from ...errors import ImageError
from ..schemas import Error, Upload
from ..security import error
from ..views import Settings, Store, display_name, picture_route

router = APIRouter()


@router.post("/api/uploads", status_code=201, response_model=Upload, summary="Upload a picture",
             responses={413: {"model": Error}, 507: {"model": Error}})
async def upload(file: UploadFile, request: Request, config: Settings, store: Store) -> dict[str, Any] | JSONResponse:
    name = display_name(file.filename)
    data = await file.read(config.max_upload_bytes + 1)
    if len(data) > config.max_upload_bytes:
        return error(413, f"{name}: larger than the limit of {config.max_upload_mb:g} MB")
    async with request.app.state.decoding:
        try:
            picture = await run_in_threadpool(images.load_image, data, config.max_pixels)
        except ImageError as exc:
            raise ImageError(f"{name}: {str(exc).removeprefix('the image: ')}") from None
        record = await run_in_threadpool(store.add_upload, picture, name)
    return {**record, "image": f"/api/uploads/{record['id']}/image",
            "thumbnail": f"/api/uploads/{record['id']}/thumbnail"}


@picture_route(router, "/api/uploads/{upload_id}/image", summary="An uploaded picture")
async def upload_image(upload_id: str, store: Store) -> FileResponse:
    store.upload(upload_id)
    return FileResponse(store.upload_path(upload_id), media_type="image/png")


@picture_route(router, "/api/uploads/{upload_id}/thumbnail", summary="Its thumbnail")
async def upload_thumbnail(upload_id: str, store: Store) -> FileResponse:
    store.upload(upload_id)
    return FileResponse(store.upload_path(upload_id, thumb=True), media_type="image/jpeg")
