"""The live app: ``App`` builds a run from ``Options`` (the flags) and runs it;
``Controls`` steers it while it runs (the panel, the window's keys and library users)."""

from realtime.app.app import App, Options
from realtime.app.controls import Controls, ControlState

__all__ = ["App", "ControlState", "Controls", "Options"]
