#!/usr/bin/env python
"""PRNet Live: 3D face reconstruction and AR effects on a camera, a video, images or
the built-in demo, shown in a window and/or written to files, a virtual camera or a
local MJPEG stream. The same as the ``prnet-live`` command.

    python run_live.py                      # demo source in a window
    python run_live.py --camera 0           # webcam
    python run_live.py --input clip.mp4 --output out.mp4 --no-window --profile out/p.json

The command, its flags and ``main``: realtime/cli.py; the app it runs: realtime/app/.
"""

from realtime.cli import command

if __name__ == "__main__":
    command()
