"""The control panel's web server, on the one HTTP stack (realtime.outputs.http: aiohttp
on its own thread and event loop, beside the pipeline), steering the run only through
its Controls (realtime.app.controls).

Routes (JSON unless said; POSTs change state):
    GET  /                      the page (static/index.html, panel.js, panel.css)
    GET  /stream.mjpg           the live output, multipart JPEG (as --stream serves it)
    GET  /api/state             effect, effects, toggles, recording, live figures
    GET  /api/thumb?effect=N    an effect's thumbnail (JPEG; 404 until drawn)
    GET  /api/face.jpg?track=N  a face in view, cut from the newest output frame
    GET  /api/snapshot.png      the newest output frame, as a download
    GET  /api/recording.mp4     the last finished recording, as a download
    POST /api/effect            {"name": "tiger"}
    POST /api/settings          {"hud": bool, "mirror": bool, "smoothing": 0..1, "occlusion": bool}
    POST /api/source-face       the photo's bytes as the body (kept in memory only), for every
                                face, or with ?track=N for that face only
    POST /api/live-face         {"track": N}: that face back to its live self
    POST /api/record            {"on": bool}

Security: on a loopback host only requests naming that host are served (a web page
elsewhere cannot reach us by DNS rebinding), and every POST must carry the page's
``X-Panel`` header and no foreign Origin (a web page elsewhere cannot forge one
without the browser asking first, which we never allow). Any other host also needs
the random token printed with the URL, on every API request and the stream: the
camera image is as private as the controls. Bodies over their limit are refused from
their Content-Length, before they are read.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import ipaddress
import json
import secrets
import socket
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import cv2
import numpy as np
from aiohttp import web

from realtime.app.controls import Controls
from realtime.core.types import UserError
from realtime.outputs.files import Recording
from realtime.outputs.http import Feed, HttpServer
from realtime.panel.thumbs import Thumbnails

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 20 * 1024 * 1024  # bytes of a source-face photo
MAX_SIDE = 8000  # pixels, either side of a source-face photo
MAX_JSON = 16 * 1024  # bytes of any other request body
WORK_SIDE = 1600  # photos are scaled down to this before reconstruction: faces stay sharp, MTCNN fast
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the page's address
    "Cache-Control": "no-store",
}


class UploadError(UserError):
    """A photo the panel cannot use; the message is shown on the page as it is."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lan_address() -> str:
    """This machine's address on its network, for a URL other machines can open (a UDP
    socket's chosen source address: nothing is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
    except OSError:
        return socket.gethostname()


def too_big(size: int, name: str) -> str:
    """Why a photo of ``size`` bytes is refused (the header check and the decoder agree)."""
    return f"{name} is {size / 2**20:.1f} MB: the limit is {MAX_UPLOAD // 2**20} MB; use a smaller photo"


def decode_photo(data: bytes, name: str = "the photo") -> np.ndarray:
    """BGR uint8 from an uploaded file's bytes, or UploadError saying why not. The
    size is read from the header before anything is decoded, so a small file that
    would unpack to gigabytes is refused cheaply; EXIF rotation is applied (phone
    photos); big photos are scaled to WORK_SIDE."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if len(data) > MAX_UPLOAD:
        raise UploadError(too_big(len(data), name))
    if not data:
        raise UploadError(f"{name} is empty: use a photo (JPEG, PNG or WebP)")
    unreadable = f"{name} is not a readable image: use a photo (JPEG, PNG or WebP)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            w, h = image.size
            if w > MAX_SIDE or h > MAX_SIDE:
                raise UploadError(
                    f"{name} is {w}x{h} pixels: the limit is {MAX_SIDE}x{MAX_SIDE}; scale it down"
                )
            image = ImageOps.exif_transpose(image).convert("RGB")
    except Image.DecompressionBombError:
        raise UploadError(f"{name} is too many pixels: the limit is {MAX_SIDE}x{MAX_SIDE}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise UploadError(unreadable) from None
    bgr = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
    scale = WORK_SIDE / max(bgr.shape[:2])
    if scale < 1:
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return bgr


class Panel:
    """Serves the control page for a run's ``controls`` on http://HOST:PORT/ (port 0: a
    free one) from construction until ``close()``. Fails at once with an OutputError
    when the address cannot be bound."""

    def __init__(
        self,
        controls: Controls,
        port: int = 8090,
        host: str = "127.0.0.1",
        record_dir: str | Path = "recordings",
        notify: Callable[[str], None] = print,
    ):
        self.controls, self.host = controls, host
        self.local = is_loopback(host)
        self.token = None if self.local else secrets.token_urlsafe(18)
        self.record_dir = Path(record_dir)
        self.recording: Recording | None = None
        self.last_recording: Path | None = None
        self._record_lock = threading.Lock()
        self._upload_lock = asyncio.Lock()
        self._closed = False
        self.feed = Feed()

        def routes(web_app: web.Application) -> None:
            web_app.on_response_prepare.append(self._headers)
            r = web_app.router
            r.add_get("/", self._index)
            r.add_static("/static", STATIC)
            r.add_get("/stream.mjpg", self.feed.stream)
            r.add_get("/api/state", self._state)
            r.add_get("/api/thumb", self._thumb)
            r.add_get("/api/face.jpg", self._face)
            r.add_get("/api/snapshot.png", self._snapshot)
            r.add_get("/api/recording.mp4", self._recording)
            r.add_post("/api/effect", self._effect)
            r.add_post("/api/settings", self._settings)
            r.add_post("/api/source-face", self._source_face)
            r.add_post("/api/live-face", self._live_face)
            r.add_post("/api/record", self._record)

        self.server = HttpServer(
            host,
            port,
            routes,
            "--panel",
            (self.feed,),
            name="panel-http",
            client_max_size=MAX_UPLOAD,
            middlewares=[self._guard()],
        )
        self.port, self.loop = self.server.port, self.server.loop
        drawn = controls.stage is not None
        self.thumbs = Thumbnails(
            controls.layout,
            controls.preview_face,
            controls.reconstruct,
            controls.effect_for if drawn else lambda name: None,
            controls.effects if drawn else [],
            notify=notify,
        )
        self.server.start()
        controls.add_output(self.feed)

    @property
    def url(self) -> str:
        """The page's address, with the token when one is needed."""
        host = lan_address() if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def close(self) -> None:
        """Stop serving (streams end within half a second), finish any recording."""
        if self._closed:
            return
        self._closed = True
        self._stop_recording()
        self.server.close()
        self.thumbs.close()

    # -- security ----------------------------------------------------------------------
    def _guard(self):
        @web.middleware
        async def guard(request: web.Request, handler):
            if self.local and request.host.lower() not in self._local_hosts():
                return _error(403, "this panel answers to 127.0.0.1 and localhost only")
            private = request.path.startswith("/api/") or request.path == "/stream.mjpg"
            if self.token is not None and private:
                given = request.headers.get("X-Panel-Token") or request.query.get("token", "")
                if not hmac.compare_digest(given.encode(), self.token.encode()):
                    return _error(403, "missing or wrong token: open the URL printed at start")
            if request.method == "POST":
                origin = request.headers.get("Origin")
                if "X-Panel" not in request.headers or (origin and origin != f"http://{request.host}"):
                    return _error(403, "requests must come from the panel's own page")
                size = request.content_length
                if size is None:
                    return _error(411, "send the body with a Content-Length")
                if request.path == "/api/source-face":
                    if size > MAX_UPLOAD:
                        return _error(413, too_big(size, "the file"))
                elif size > MAX_JSON:
                    return _error(413, f"the request is {size} bytes: the limit is {MAX_JSON}")
            return await handler(request)

        return guard

    def _local_hosts(self) -> set[str]:
        """The Host headers a loopback panel answers: its own names, never a stranger's."""
        own = f"[{self.host}]" if ":" in self.host else self.host
        return {f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]", own.lower())}

    @staticmethod
    async def _headers(request, response) -> None:
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)

    # -- pages and media ----------------------------------------------------------------
    async def _index(self, request):
        return web.FileResponse(STATIC / "index.html")

    async def _thumb(self, request):
        jpeg = self.thumbs.images.get(request.query.get("effect", ""))
        if jpeg is None:
            return _error(404, "no thumbnail yet")
        return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    async def _face(self, request):
        track = _track(request.query.get("track"))
        box = next((f["box"] for f in self.controls.faces() if f["track"] == track), None)
        image = self.feed.latest()[1]
        if box is None or image is None:
            return _error(404, f"no face #{track} in view")
        x0, y0, x1, y1 = box
        side = 1.5 * max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        h, w = image.shape[:2]
        a, b = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
        crop = image[b : int(min(cy + side / 2, h)), a : int(min(cx + side / 2, w))]
        if crop.size == 0:
            return _error(404, f"face #{track} is out of the frame")
        crop = cv2.resize(crop, (96, 96), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return web.Response(body=buf.tobytes(), content_type="image/jpeg")

    async def _snapshot(self, request):
        count, image = self.feed.latest()
        if image is None:
            return _error(503, "no frame yet")
        ok, buf = await self.loop.run_in_executor(None, cv2.imencode, ".png", image)
        if not ok:
            return _error(500, "PNG encoding failed")
        name = f"prnet-live-{time.strftime('%Y%m%d-%H%M%S')}.png"
        return web.Response(
            body=buf.tobytes(),
            content_type="image/png",
            headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Frame": str(count)},
        )

    async def _recording(self, request):
        path = self.last_recording
        if path is None or not path.is_file():
            return _error(404, "no finished recording")
        return web.FileResponse(path, headers={"Content-Disposition": f'attachment; filename="{path.name}"'})

    # -- state ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything the page shows: the run's ControlState (the window's keys change
        it too), the thumbnails' versions, the recording and the newest frame's count."""
        rec = self.recording
        state = asdict(self.controls.state())
        del state["source_fps"]
        return {
            **state,
            "thumbs": dict(self.thumbs.versions),
            "recording": {"path": str(rec.path), "seconds": round(rec.seconds, 1)} if rec else None,
            "last_recording": str(self.last_recording) if self.last_recording else None,
            "frame": self.feed.latest()[0],
        }

    async def _state(self, request):
        return web.json_response(self.state())

    async def _json(self, request) -> dict:
        if request.content_type != "application/json":
            raise _failure(web.HTTPUnsupportedMediaType, "send JSON (Content-Type: application/json)")
        try:
            body = await request.json()
        except ValueError:
            raise _failure(web.HTTPBadRequest, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise _failure(web.HTTPBadRequest, "send a JSON object")
        return body

    async def _call(self, fn, *args):
        """Run a steering call off the loop (building an effect or reconstructing a
        photo takes a while); a UserError becomes a 400 with its one line."""
        try:
            return await self.loop.run_in_executor(None, fn, *args)
        except UserError as e:
            raise _failure(web.HTTPBadRequest, str(e)) from None

    async def _effect(self, request):
        name = (await self._json(request)).get("name")
        if not isinstance(name, str) or not name:
            return _error(400, 'send {"name": EFFECT}')
        await self._call(self.controls.set_effect, name)
        frame = self.feed.latest()[0]  # frames after the next one show the new effect
        if name not in self.thumbs.images:
            self.thumbs.request(name)  # mask:PATH and the like: drawn on first use
        return web.json_response({**self.state(), "switched_at": frame})

    async def _settings(self, request):
        body = await self._json(request)
        c = self.controls
        setters = {
            "hud": (bool, c.set_hud),
            "mirror": (bool, c.set_mirror),
            "smoothing": ((int, float), c.set_smoothing),
            "occlusion": (bool, c.set_occlusion),
        }
        for key, value in body.items():
            kind, setter = setters.get(key, (None, None))
            if setter is None or not isinstance(value, kind):
                return _error(400, f"unknown setting {key}={value!r}")
        for key, value in body.items():
            await self._call(setters[key][1], value)
        return web.json_response(self.state())

    async def _source_face(self, request):
        name = unquote(request.headers.get("X-File-Name", ""))[:120].strip()
        name = "".join(c for c in name if c.isprintable()) or "the photo"
        track = _track(request.query.get("track")) if "track" in request.query else None
        data = await request.read()  # in memory only; Content-Length was checked
        async with self._upload_lock:  # one at a time: each is a network pass
            photo = await self._call(decode_photo, data, name)
            await self._call(self.controls.set_source_face, photo, track, name)
        self.thumbs.request("swap")
        who = "every face" if track is None else f"face #{track}"
        return web.json_response({**self.state(), "message": f"face swap on {who}, with the face in {name}"})

    async def _live_face(self, request):
        track = (await self._json(request)).get("track")
        if not isinstance(track, int) or isinstance(track, bool):
            return _error(400, 'send {"track": N}, a face number from the state')
        await self._call(self.controls.set_live_face, track)
        return web.json_response({**self.state(), "message": f"face #{track} is itself again"})

    async def _record(self, request):
        on = (await self._json(request)).get("on")
        if not isinstance(on, bool):
            return _error(400, 'send {"on": true} or {"on": false}')
        message = await self._call(self._start_recording if on else self._stop_recording)
        return web.json_response({**self.state(), "message": message})

    def _start_recording(self) -> str:
        with self._record_lock:
            if self.recording is not None:
                return f"already recording to {self.recording.path}"
            state = self.controls.state()
            fps = state.figures["fps"] or state.source_fps
            path = self.record_dir / f"prnet-live-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
            self.recording = Recording(path, fps)  # OutputError (a UserError) if not writable
            self.controls.add_output(self.recording)
            return f"recording to {path}"

    def _stop_recording(self) -> str:
        with self._record_lock:
            rec, self.recording = self.recording, None
            if rec is None:
                return "not recording"
            self.controls.remove_output(rec)
            rec.close()
            self.last_recording = rec.path
            return f"saved {rec.path} ({rec.frames} frames, {rec.seconds:.1f} s)"


def _track(text: str | None) -> int:
    """A face's track id from a query parameter, or a 400 saying what to send."""
    try:
        return int(text or "")
    except ValueError:
        raise _failure(web.HTTPBadRequest, "give track=N, a face number from the state") from None


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _failure(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    """An HTTP error to raise, with the same JSON body as ``_error``'s."""
    return kind(text=json.dumps({"error": message}), content_type="application/json")
