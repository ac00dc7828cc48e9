"""Instant previews: an upload painted in each built-in style in one pass of the network, at most
``PREVIEW_SIDE`` pixels on its long side, so that the page can show a row of them seconds after an upload.

They are painted by a pool of ``WORKERS`` threads apart from the job worker (a preview must not wait behind
a long optimisation), kept beside the upload (``uploads/ID.styles/NAME.jpg``) so that asking again costs a
file read, and removed with it. The picture they paint is the upload made small once (``source.png``): a
large photo is decoded once, not once a style.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from PIL import Image

from .. import feedforward, images
from ..feedforward import TransformerNet, styles
from ..runtime import Runtime
from .models import builtin_network, builtin_style
from .store import JobStore

#: The long side of a preview, in pixels (a photo smaller than this is painted at its own size).
PREVIEW_SIDE = 384
#: Previews painted at once.
WORKERS = 2
#: The upload made small, which every style's preview paints.
SOURCE = "source.png"


class Previews:
    """Paints, keeps and serves the previews of uploads in the built-in styles, on ``device``."""

    def __init__(self, store: JobStore, device: str = "auto") -> None:
        self.store = store
        self.device = device
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="stylecraft-preview")
        self._lock = threading.Lock()
        self._nets: dict[str, TransformerNet] = {}

    async def picture(self, upload_id: str, name: str) -> bytes:
        """The JPEG of upload ``upload_id`` painted in the built-in style ``name``: read back if made before,
        else painted now in the pool. NotFound for an unknown upload or style."""
        self.store.upload(upload_id)
        builtin_style(name)
        kept = self.store.style_previews(upload_id) / f"{name}.jpg"
        if kept.is_file():
            return await asyncio.to_thread(kept.read_bytes)
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._paint, upload_id, name)

    def close(self) -> None:
        """Stop painting: previews asked for and not begun are dropped."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _paint(self, upload_id: str, name: str) -> bytes:
        """Paint and keep the preview (unless another request did while this one waited)."""
        kept = self.store.style_previews(upload_id) / f"{name}.jpg"
        if kept.is_file():
            return kept.read_bytes()
        painted = feedforward.apply(self._net(name), images.to_tensor(self._source(upload_id)))
        data = images.encode_image(images.to_pil(painted), "JPEG")
        self.store.add_style_preview(upload_id, kept.name, data)
        return data

    def _source(self, upload_id: str) -> Image.Image:
        """The upload at most PREVIEW_SIDE pixels long (a video: its first frame's thumbnail), made once."""
        with self._lock:
            small = self.store.style_previews(upload_id) / SOURCE
            if small.is_file():
                return images.load_image(small)
            video = self.store.upload(upload_id)["kind"] == "video"
            picture = images.load_image(self.store.upload_path(upload_id, "thumb" if video else "picture"))
            picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
            self.store.add_style_preview(upload_id, SOURCE, images.encode_image(picture, "PNG"))
            return picture

    def _net(self, name: str) -> TransformerNet:
        """The one-style network of the built-in style ``name`` on the device, made once."""
        with self._lock:
            if name not in self._nets:
                net = cast(TransformerNet, styles.painting(builtin_network() or styles.load_builtin(), name).net)
                self._nets[name] = net.to(Runtime.resolve(self.device, "fp32").device)
            return self._nets[name]
