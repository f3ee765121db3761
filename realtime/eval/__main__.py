"""``python -m realtime.eval``: the AFLW2000-3D landmark evaluation (realtime.eval.landmarks);
``python -m realtime.eval swap`` the face swap's quality benchmark (realtime.eval.swap);
``python -m realtime.eval occlusion`` the visibility network's (realtime.eval.occlusion);
``python -m realtime.eval expression`` mouth and lids against MediaPipe (realtime.eval.expression);
``python -m realtime.eval uv-align`` the swap source's feature alignment in UV (realtime.eval.uv_align)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["swap"]:
        from realtime.eval.swap import main as run
    elif argv[:1] == ["occlusion"]:
        from realtime.eval.occlusion import main as run
    elif argv[:1] == ["expression"]:
        from realtime.eval.expression import main as run
    elif argv[:1] == ["uv-align"]:
        from realtime.eval.uv_align import main as run
    else:
        from realtime.eval.landmarks import main as run

        return run(argv)
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
