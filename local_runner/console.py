"""The web console's static files (console/) at /console/, as CloudFront serves them from the media bucket's
console/ prefix in AWS: same origin as the API here, so the browser needs no CORS locally.

Self-contained on purpose: the gateway calls `console_response` for GET/HEAD paths no route matched.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import unquote

from local_runner.apigw import HttpResponse, gateway_error

CONSOLE_ROOT = Path(__file__).resolve().parents[1] / "console"
PREFIX = "/console/"
# ES modules must be served with a JavaScript MIME type or the browser refuses them (HTML spec, "module
# script"); mimetypes may not know .mjs or may say text/plain for .js on some systems, so these are fixed.
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def console_response(raw_path: str, root: Path = CONSOLE_ROOT) -> HttpResponse | None:
    """The response for /console or /console/..., or None when the path is not the console's."""
    if raw_path == "/console":
        return HttpResponse(301, [("Location", PREFIX)], b"")
    if not raw_path.startswith(PREFIX):
        return None
    name = unquote(raw_path.removeprefix(PREFIX)) or "index.html"
    if "\x00" in name or "\\" in name or any(part in ("", ".", "..") for part in name.split("/")):
        return gateway_error(404, "Not Found")
    base = root.resolve()
    path = (base / name).resolve()
    if base not in path.parents or not path.is_file():
        return gateway_error(404, "Not Found")
    content_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # no-cache: the browser revalidates, so an edited file shows on the next reload (no build step, no hashes)
    return HttpResponse(200, [("Content-Type", content_type), ("Cache-Control", "no-cache")], path.read_bytes())
