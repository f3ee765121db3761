"""The one HTTP stack: aiohttp on its own thread and event loop, serving the MJPEG
stream (``--stream``: ``StreamOutput``) and the control panel (realtime.panel) alike.

A ``Feed`` is the pipeline output both serve: ``write`` runs on the render thread and
must never wait on a viewer, so it only keeps a reference to the frame and, when
someone watches, pokes the server's loop; the viewers' side encodes the JPEG, once per
frame whoever asks first. A slow viewer simply finds a newer frame when it comes back
(frames are dropped, never queued).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import cv2
import numpy as np
from aiohttp import web

from realtime.outputs.files import OutputError

BOUNDARY = "prnetframe"
STREAM_PAGE = b'<html><body style="margin:0;background:#111"><img src="/stream.mjpg"></body></html>'


class Feed:
    """The newest output frame, shared by every viewer of a stream (an Output)."""

    def __init__(self, quality: int = 80):
        self.quality = quality
        self.loop: asyncio.AbstractEventLoop | None = None  # set by the server that serves it
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._count = 0  # frames written so far
        self._jpeg: tuple[int, bytes] | None = None  # (frame count, JPEG) cached for all viewers
        self._event: asyncio.Event | None = None  # replaced on every frame; only touched on the loop
        self.viewers = 0  # only frames written while someone watches wake the loop
        self.closed = False

    # -- the render thread ---------------------------------------------------------
    def write(self, image: np.ndarray, frame=None) -> None:
        with self._lock:
            self._image, self._count = image, self._count + 1
        if self.viewers and not self.closed:
            self._poke()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._poke()

    def _poke(self) -> None:
        if self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop closed under us: the server is going away
                pass

    # -- the server's event loop -----------------------------------------------------
    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        if event is not None:
            event.set()

    def latest(self) -> tuple[int, np.ndarray | None]:
        """(frame count, image) of the newest frame."""
        with self._lock:
            return self._count, self._image

    async def next_frame(self, seen: int, timeout: float = 0.5) -> int:
        """Wait until a frame newer than ``seen`` was written (or ``timeout``); its count."""
        count = self.latest()[0]
        if count > seen or self.closed:
            return count
        if self._event is None:
            self._event = asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        return self.latest()[0]

    async def jpeg(self) -> tuple[int, bytes | None]:
        """(frame count, JPEG) of the newest frame, encoded off the loop and cached."""
        count, image = self.latest()
        cached = self._jpeg
        if cached is not None and cached[0] == count:
            return cached
        if image is None:
            return count, None
        params = [cv2.IMWRITE_JPEG_QUALITY, self.quality]
        ok, buf = await asyncio.get_running_loop().run_in_executor(None, cv2.imencode, ".jpg", image, params)
        if not ok:
            return count, None
        if self._jpeg is None or self._jpeg[0] < count:
            self._jpeg = (count, buf.tobytes())
        return count, buf.tobytes()

    # -- handlers --------------------------------------------------------------------
    async def stream(self, request: web.Request) -> web.StreamResponse:
        """multipart/x-mixed-replace JPEGs: browsers, OBS, VLC, ffplay and
        cv2.VideoCapture open it."""
        response = web.StreamResponse(
            headers={
                "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                "Cache-Control": "no-cache, private",
                "Pragma": "no-cache",
            }
        )
        await response.prepare(request)
        self.viewers += 1
        try:
            seen = 0
            while not self.closed:
                if await self.next_frame(seen) == seen:
                    continue
                seen, jpeg = await self.jpeg()
                if jpeg is not None:
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                    # A slow viewer waits here; frames written meanwhile are skipped, not queued.
                    await response.write(head.encode() + jpeg + b"\r\n")
        except (ConnectionResetError, ConnectionError):
            pass  # the viewer went away
        finally:
            self.viewers -= 1
        return response

    async def snapshot(self, request: web.Request) -> web.Response:
        """The newest frame as a JPEG (503 before the first)."""
        jpeg = (await self.jpeg())[1]
        if jpeg is None:
            return web.Response(status=503, text="no frame yet")
        return web.Response(body=jpeg, content_type="image/jpeg")


class HttpServer:
    """An aiohttp application on HOST:PORT (port 0: a free one), served on its own
    thread and event loop from construction until ``close()``. ``routes(app)`` adds the
    routes; ``feeds`` are the Feeds it serves (their loop is this one). The address is
    bound at once (an OutputError naming ``flag`` when it cannot be); requests wait in
    the backlog until ``start()``."""

    def __init__(
        self,
        host: str,
        port: int,
        routes: Callable[[web.Application], None],
        flag: str,
        feeds: tuple[Feed, ...] = (),
        name: str = "http",
        **app_options,
    ):
        self.host = host
        self.loop = asyncio.new_event_loop()
        app = web.Application(**app_options)
        routes(app)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        try:
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, host, port, shutdown_timeout=1.0)
            self.loop.run_until_complete(site.start())
        except OSError as e:
            self.loop.run_until_complete(self.runner.cleanup())
            self.loop.close()
            why = e.strerror or e
            raise OutputError(f"cannot serve on {host}:{port}: {why}: pick another {flag} port") from None
        self.port = self.runner.addresses[0][1]
        self.feeds = feeds
        for feed in feeds:
            feed.loop = self.loop
        self._closed = False
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        """Stop serving; streams end within half a second."""
        if self._closed:
            return
        self._closed = True
        for feed in self.feeds:
            feed.close()
        if not self.thread.is_alive():  # never started
            self.loop.run_until_complete(self.runner.cleanup())
            self.loop.close()
            return
        try:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=3)
        except Exception:  # a handler that would not stop: the thread is a daemon
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(2)
        if not self.thread.is_alive():
            self.loop.close()


class StreamOutput:
    """``--stream PORT``: http://HOST:PORT/ is a page showing the stream,
    /stream.mjpg the stream itself, /snapshot.jpg the newest frame. JPEGs are encoded
    only while someone watches. port 0 picks a free port."""

    def __init__(self, port: int = 8080, host: str = "127.0.0.1", quality: int = 80):
        self.feed = Feed(quality)

        def routes(app: web.Application) -> None:
            app.router.add_get("/", self._page)
            app.router.add_get("/index.html", self._page)
            app.router.add_get("/stream.mjpg", self.feed.stream)
            app.router.add_get("/snapshot.jpg", self.feed.snapshot)

        self.server = HttpServer(host, port, routes, "--stream", (self.feed,), name="mjpeg-http")
        self.server.start()
        self.host, self.port = host, self.server.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/stream.mjpg"

    @staticmethod
    async def _page(request: web.Request) -> web.Response:
        return web.Response(body=STREAM_PAGE, content_type="text/html")

    def write(self, image: np.ndarray, frame=None) -> None:
        self.feed.write(image)

    def close(self) -> None:
        self.server.close()
