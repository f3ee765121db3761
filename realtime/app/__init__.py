"""The live app: ``App`` builds a run from ``Options`` (the flags) and runs it;
``Controls`` steers it while it runs (the panel, the window's keys and library users)."""

from realtime.app.app import App
from realtime.app.controls import Controls, ControlState
from realtime.app.options import Options

__all__ = ["App", "ControlState", "Controls", "Options"]
