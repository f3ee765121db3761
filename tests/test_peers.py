"""The peers benchmark on a few frames: the table has a row per peer, every installed
peer has positive timings and a sane NME on a few AFLW2000-3D faces, and a peer that is
not installed says so."""

from __future__ import annotations

import pytest

from realtime.bench import peers as P


def _installed() -> list[str]:
    return [
        name
        for name, (found, _) in (("mediapipe", P.mediapipe_python()), ("dlib", P.dlib_model()))
        if found is not None
    ]


def test_peers_table(shared, tmp_path):
    installed = _installed()
    if not installed:
        pytest.skip(
            "no peer installed: pip install -e '.[peers]' (dlib) and "
            "python -m realtime.bench.peers --setup (MediaPipe's own venv)"
        )
    peers = ("ours", "mediapipe", "dlib")
    report = P.run_peers(tmp_path, 5, 6, peers, sizes=((640, 480),), warm_starts=0, aflw=shared / "aflw2000")
    md = (tmp_path / "peers.md").read_text()
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in md.splitlines()
        if line.startswith("| ") and not line.startswith("| peer")
    }
    assert set(rows) == set(peers), md
    for name in ("ours", *installed):
        ms = float(rows[name][0].split("/")[0])  # "640x480 ms p50 / p95", ratio after
        assert ms > 0, rows[name]
        peer = report["peers"][name]
        assert peer["startup"]["first_s"] > 0
        assert 0 < peer["jitter"]["px"] < 3, peer["jitter"]
        nme = report["nme"][name]
        assert nme["found"] >= 3, nme
        assert 0.5 < nme["found_images"]["all"] < 15, nme  # percent of the face's size
    for name in set(peers) - {"ours", *installed}:
        assert rows[name][0].startswith("skipped"), rows[name]
    assert (tmp_path / "peers.json").is_file() and (tmp_path / "peers.png").stat().st_size > 0
