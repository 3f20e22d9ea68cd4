"""The web app: its page at / and at each of its own paths, and its built files under /assets.

`make web` builds web/ into app/web/static: an index.html and content-hashed assets, so the page is
revalidated on every load and the assets are cached for good. The files are read once, when the app
is created, and served from memory, gzipped ahead when that makes them smaller.
"""

import gzip
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"
# The app's own paths (web/src/router.jsx): a reload or a shared link there gets the page.
PAGES = (
    "/",
    "/login",
    "/signup",
    "/account",
    "/memories",
    "/c/{session_id:uuid}",
    "/admin",
    "/admin/{rest:path}",
)
NOT_BUILT = (
    "The web app is not built. Run `make web` (or `make run`, which builds it), then reload.\n"
    "The API is served under /api/v1 all the same; see /docs.\n"
)


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str


def _asset(path: Path) -> Asset:
    body = path.read_bytes()
    packed = gzip.compress(body, compresslevel=9, mtime=0)
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type.endswith("javascript"):
        media_type += "; charset=utf-8"
    return Asset(body, packed if len(packed) < len(body) else None, media_type)


def load_assets(directory: Path = STATIC_DIR) -> dict[str, Asset]:
    """Every built file by its path under /, index.html included; empty when nothing is built."""
    if not (directory / "index.html").is_file():
        return {}
    return {
        str(path.relative_to(directory)): _asset(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _send(asset: Asset, request: Request, cache: str) -> Response:
    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding"}
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def web_router(assets: dict[str, Asset]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def page(request: Request) -> Response:
        index = assets.get("index.html")
        if index is None:
            return Response(NOT_BUILT, status_code=503, media_type="text/plain; charset=utf-8")
        return _send(index, request, "no-cache")

    async def asset(name: str, request: Request) -> Response:
        found = assets.get(f"assets/{name}")
        if found is None:
            return Response("Not found\n", status_code=404, media_type="text/plain; charset=utf-8")
        return _send(found, request, "public, max-age=31536000, immutable")

    for path in PAGES:
        router.add_api_route(path, page, methods=["GET"])
    router.add_api_route("/assets/{name}", asset, methods=["GET"])
    return router


def install_web(app: FastAPI, directory: Path = STATIC_DIR) -> None:
    app.include_router(web_router(load_assets(directory)))
