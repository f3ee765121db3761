"""A control page in the browser for a live run (``--panel [PORT]``): the output,
effects with thumbnails, a source face for the swap, toggles, live figures, snapshot
and recording. Plain HTML, JS and CSS in static/, served by aiohttp (the ``panel``
extra); see realtime.panel.server for the routes and the security rules."""

from realtime.panel.server import Panel

__all__ = ["Panel"]
