"""The built-in styles: each one's painting, an upload painted in it in one pass (an instant preview), and its
painting copied into the uploads, for the optimiser to paint a photo finely in that style."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from ... import images
from ...feedforward import styles
from ..models import builtin_style
from ..schemas import Error, Upload
from ..views import PRIVATE, Painter, Store, display_name, picture_route, public_upload

router = APIRouter()


@picture_route(router, "/api/styles/{name}/painting", summary="The painting of a built-in style (JPEG, 512 px)")
async def painting(name: str) -> FileResponse:
    builtin_style(name)
    path = await run_in_threadpool(styles.painting_file, name)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})


@router.post("/api/styles/{name}/upload", status_code=201, response_model=Upload,
             summary="Copy a built-in style's painting into the uploads (a style picture for the optimiser)",
             responses={404: {"model": Error}, 507: {"model": Error}})
async def painting_upload(name: str, store: Store) -> dict[str, Any]:
    record = builtin_style(name)
    path = await run_in_threadpool(styles.painting_file, name)
    picture = await run_in_threadpool(images.load_image, path)
    kept = await run_in_threadpool(store.add_upload, picture, display_name(record["title"] or name))
    return public_upload(kept)


@picture_route(router, "/api/uploads/{upload_id}/styles/{name}",
               summary="An upload painted in a built-in style in one pass (JPEG, at most 384 px)")
async def preview(upload_id: str, name: str, previews: Painter) -> Response:
    return Response(await previews.picture(upload_id, name), media_type="image/jpeg", headers=PRIVATE)
