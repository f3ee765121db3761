"""``python -m realtime.peers --setup`` makes MediaPipe's virtual environment;
``--worker ours|dlib`` serves a peer over the line protocol (the peers' processes)."""

from __future__ import annotations

import argparse
import sys

from realtime.peers.workers import MEDIAPIPE_VENV, setup_mediapipe


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m realtime.peers", description=__doc__)
    ap.add_argument("--setup", action="store_true", help=f"create MediaPipe's venv ({MEDIAPIPE_VENV})")
    ap.add_argument("--worker", choices=("ours", "dlib"), help="serve this peer on stdin/stdout")
    ap.add_argument("--threads", type=int, default=None, help="ours: torch and onnxruntime threads")
    ap.add_argument("--model", default="auto", help="ours: a shipped model (auto, lite, mobile)")
    args = ap.parse_args(argv)
    if args.worker:
        from realtime.peers.mediapipe_peer import serve

        if args.worker == "dlib":
            from realtime.peers.dlib_peer import DlibPeer

            return serve(DlibPeer)
        from realtime.peers.ours import OursPeer

        return serve(lambda: OursPeer(threads=args.threads, model=args.model))
    if args.setup:
        return setup_mediapipe()
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
