"""The face swap on real photos and clips, asserting what a user would check: the swap
draws a whole face (nothing of the live face shows through the skin, the brows, the
nose or the lips) while the live eyeballs and the inside of the mouth show, a source
photo's teeth and occluders do not end up on the face, a smiling source's folds are not
drawn as lines on a face at rest, and the swap-quality benchmark
(realtime.eval.swap) at CI size: passthrough lossless to the measure, a self-swap
beating a flat grey texture, outputs nearer the source than the target. Plus its
measures and its one-line answer without dlib."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest
from conftest import need

from realtime.eval import identity as ident
from realtime.eval import measures as ms
from realtime.eval import swap as sq
from realtime.eval import swap_sheet as sheet
from realtime.live.capture import clip_frames
from realtime.render.context import GLContextError, create_context
from realtime.render.effects.swap import FaceSwap

pytestmark = pytest.mark.gl


@pytest.fixture(scope="module")
def run(bundle, shared):
    from realtime.live.faces import FaceProcessor
    from realtime.live.occlusion import load_visibility

    try:
        create_context().release()
    except GLContextError as e:
        need(False, str(e))
    return sq.Runner(bundle, FaceProcessor.from_bundle(bundle, "eager", "cpu", visibility=load_visibility()))


def dlib_ok() -> bool:
    try:
        ident.Identity()
    except ident.IdentityUnavailable:
        return False
    return True


@pytest.fixture(scope="module")
def talking(run, carphone):
    """Carphone at 1280 x 720 (as the benchmark's HD clip), its first 64 frames tracked,
    and the frames' indices, the mouth open widest first."""
    frames = clip_frames(carphone, (1280, 720), limit=64)
    recs = run.track(frames)
    gap = [np.linalg.norm(r.landmarks[66, :2] - r.landmarks[62, :2]) if r else 0.0 for r in recs]
    return frames, recs, [int(k) for k in np.argsort(gap)[::-1]]


def disc(shape, centre, radius) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.circle(m, tuple(int(round(v)) for v in centre), max(int(radius), 1), 1, -1)
    return m > 0


def hull(shape, points, grow: float = 1.0) -> np.ndarray:
    c = points.mean(0)
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round((points - c) * grow + c).astype(np.int32)), 1)
    return m > 0


def test_a_flat_source_hides_the_whole_inner_face_but_eyes_and_mouth(run, talking):
    """A flat grey source photo: the output's skin, brows, nose and lips hold little of
    the live face's detail (an opaque face, no patchwork), while the eyeballs and the open
    mouth are the live frame's pixels.

    The detail is the output's gradient energy over the input's, inside the face but
    outside the eyes and mouth, on the four frames where the mouth opens widest (one
    frame alone was luck: 0.18 on one and 0.20-0.31 on its neighbours, session 17). The
    mouth is the outer lips' hull grown 1.15x, and out to 1.3x the pixels where the live
    frame has the mouth's dark inside: the swap lets that show through the source's
    lips (swap.live_bands), and at a corner the live mouth reaches past our landmarks'
    hull (counted as skin, those edges gave 0.35). The aim is under 0.2 (issue 35);
    today, on the widest-open frames, the mesh's mouth reaches past the live lips at a
    corner, so the hole shows live lips and skin there (a lighter patch with the
    hole's outline): about 0.23 on average (0.22 without the live bands)."""
    frames, recs, widest = talking
    i = widest[0]
    ratios, outs = [], {}
    for k in widest[:4]:
        img, rec = frames[k], recs[k]
        src_k = (k + 20) % len(frames)
        grey = sq.grey_photo(frames[src_k])
        outs[k] = run.render(img, rec, FaceSwap(run.bundle.layout, grey, run.photo(frames[src_k])))
        lm = rec.landmarks[:, :2]
        eyes = hull(img.shape, lm[36:42], 1.6) | hull(img.shape, lm[42:48], 1.6)
        face = hull(img.shape, lm[list(range(0, 27))], 0.8)
        luma = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
        inside = hull(img.shape, lm[48:60], 1.3) & (luma < 0.55 * np.median(luma[face]))
        inner = face & ~eyes & ~hull(img.shape, lm[48:60], 1.15) & ~inside
        ratios.append(ms.gradient_energy(outs[k])[inner].mean() / ms.gradient_energy(img)[inner].mean())
    print("inner face detail, output over input:", np.round(ratios, 2))
    assert np.mean(ratios) < 0.3, f"the live face shows through the swapped skin: {np.round(ratios, 2)}"
    img, out, lm = frames[i], outs[i], recs[i].landmarks[:, :2]  # the widest: eyeballs and opening live
    diff = np.abs(out.astype(int) - img).max(-1)
    for eye in (range(36, 42), range(42, 48)):
        p = lm[list(eye)]
        ball = disc(img.shape, p.mean(0), 0.2 * np.ptp(p[:, 1]) + 1)
        assert diff[ball].mean() < 6, f"the live eyeball is covered: mean change {diff[ball].mean():.1f}"
    centre = (lm[62] + lm[66]) / 2 + np.array([0.0, 0.15]) * np.linalg.norm(lm[66] - lm[62])
    opening = disc(img.shape, centre, 0.15 * np.linalg.norm(lm[66] - lm[62]))
    assert diff[opening].mean() < 8, (
        f"the inside of the mouth is covered: mean change {diff[opening].mean():.1f}"
    )


def test_a_smiling_source_leaves_no_ink_lines_on_a_still_mouth(run, talking, media):
    """obama_portrait.jpg smiles broadly; swapped onto carphone's six most closed-mouth
    frames, the cheeks between the nose wings, the mouth corners and the jaw hold
    hardly more thin dark lines than the live cheeks do (pixels darker than 0.8 x
    their surroundings: 0.051 of the swapped cheeks against the live ones' 0.033 when
    the smile's folds were drawn as the photo left them, 0.019 with them lifted)."""
    frames, recs, widest = talking
    photo = cv2.imread(str(media / "obama_portrait.jpg"))
    swap = run.swap(photo, run.photo(photo))

    def dark_lines(img: np.ndarray, lm: np.ndarray) -> float:
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32) + 1
        dark = grey / cv2.GaussianBlur(grey, (0, 0), np.ptp(lm[:, 0]) / 20) < 0.8
        cheeks = hull(img.shape, lm[[31, 48, 5, 2]]) | hull(img.shape, lm[[35, 54, 11, 14]])
        return float(dark[cheeks].mean())

    live, drawn = [], []
    for k in widest[-6:]:
        lm = recs[k].landmarks[:, :2]
        live.append(dark_lines(frames[k], lm))
        drawn.append(dark_lines(run.render(frames[k], recs[k], swap), lm))
    print(f"thin dark lines on the cheeks: live {np.mean(live):.3f}, swapped {np.mean(drawn):.3f}")
    assert np.mean(drawn) < np.mean(live) + 0.015, "the source's smile folds are drawn as dark lines"


def test_the_swapped_cheeks_take_the_live_skin_tone(run, talking, media):
    """With tone "live" (the default), obama_portrait.jpg on carphone: the swapped
    cheeks' mean colour is within CIE Lab distance 2.5 of the live cheeks' (3.5 when only
    the face's edge was matched to the live skin, 1.7 with its inside too)."""
    frames, recs, widest = talking
    photo = cv2.imread(str(media / "obama_portrait.jpg"))
    swap = run.swap(photo, run.photo(photo))

    def lab(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_BGR2LAB)[mask].mean(0)

    dist = []
    for k in widest[-4:]:
        img, lm = frames[k], recs[k].landmarks[:, :2]
        cheeks = hull(img.shape, lm[[1, 2, 3, 31, 39]]) | hull(img.shape, lm[[15, 14, 13, 35, 42]])
        dist.append(np.linalg.norm(lab(run.render(img, recs[k], swap), cheeks) - lab(img, cheeks)))
    print("cheeks' colour distance, swapped to live:", np.round(dist, 1))
    assert np.mean(dist) < 2.5, f"the swapped face keeps its own tone: {np.round(dist, 1)}"


def test_teeth_and_occluders_of_the_source_are_filled(run, media):
    """Obama smiles with his teeth showing; a closed-mouth target must not wear them:
    the swapped lips hold no teeth-white."""
    photo = cv2.imread(str(media / "obama_portrait.jpg"))
    swap = FaceSwap(run.bundle.layout, photo, run.photo(photo))
    from realtime.core.landmarks import LIPS
    from realtime.render.effects.uvdraw import uv_landmarks

    k = uv_landmarks(run.bundle.layout, swap.texture.shape[0])
    lips = hull(swap.texture.shape, k[LIPS], 1.1) & (swap.texture[..., 3] > 200)
    bgr = swap.texture[..., :3][lips].astype(float)
    whiteish = (bgr.min(-1) > 0.8 * bgr.max(-1)) & (bgr.mean(-1) > np.percentile(bgr.mean(-1), 50))
    assert whiteish.mean() < 0.1, f"{whiteish.mean():.0%} of the lips are teeth-white"


def source_grey(run, photo: np.ndarray, rec) -> np.ndarray:
    """The source's grey texture at the aligner's size, sampled through its mesh as the
    unwrapping samples it before moving its features."""
    from realtime.render.effects.swap_align import SIDE
    from realtime.render.effects.swap_source import position_grid, upsample_grid

    pos = upsample_grid(position_grid(run.bundle.layout, rec.vertices), SIDE)
    colour = cv2.remap(cv2.GaussianBlur(photo, (0, 0), 1.0), pos[..., 0], pos[..., 1], cv2.INTER_LINEAR)
    return cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)


def test_the_aligner_finds_the_features_where_they_are(run, media):
    """Moved in the texture, the eyes, nose and nostrils, and lips are found moved as
    much. (A wide smile's lips are found less surely: obama_portrait.jpg's, up to 5
    texels off for some moves; a closed mouth's, as here, within one.)"""
    from realtime.render.effects.swap_align import GROUPS, FeatureAligner

    photo = cv2.imread(str(media / "biden_portrait.jpg"))
    grey = source_grey(run, photo, run.photo(photo))
    aligner = FeatureAligner.load()
    found = aligner.locate(grey)
    for dx, dy in ((3.0, -2.0), (-2.0, 3.0)):
        shifted = cv2.warpAffine(
            grey, np.float32([[1, 0, dx], [0, 1, dy]]), grey.shape[::-1], borderMode=cv2.BORDER_REPLICATE
        )
        moved = aligner.locate(shifted) - found
        for group in ("eye_l", "eye_r", "nose", "lips"):
            err = np.linalg.norm(moved[GROUPS[group]] - (dx, dy), axis=1).mean()
            print(group, (dx, dy), f"{err:.2f}")
            assert err < 1.0, f"{group} moved by ({dx}, {dy}): found it {err:.2f} texels off"


@pytest.fixture(scope="module")
def uv_alignment(run, media) -> dict:
    """Each source's features in UV before and after the alignment, as an independent
    reader (MediaPipe Face Mesh) sees the source photo (realtime.eval.uv_align)."""
    from realtime.eval import uv_align
    from realtime.peers.workers import mediapipe_python

    need(
        mediapipe_python()[0] is not None, "MediaPipe's venv is not set up: python -m realtime.peers --setup"
    )
    photos = {n: cv2.imread(str(media / n)) for n in ("obama_portrait.jpg", "miranda_portrait.png")}
    reader = uv_align.MeshReader()
    try:
        res = uv_align.measure(run.bundle.layout, run.photo, reader, photos)
    finally:
        reader.close()
    print(uv_align.table(res))
    return res


def test_the_source_eyes_land_on_the_layout(uv_alignment):
    """After the alignment the source's eyes sit nearer the layout's places in UV, within
    2 texels at 256 px."""
    for name, r in uv_alignment.items():
        assert r["after"]["eyes"] < r["before"]["eyes"], (name, r)
        assert r["after"]["eyes"] < 2.0, (name, r)


def test_the_source_lips_land_on_the_layout(uv_alignment):
    """The lips stay where the mesh puts them (the warp holds them: since stage 9 the
    network's lips follow the same reader's contours), and that is near the layout's
    places even for obama's open smile: within 5.5 texels at 256 px UV (the extrapolated
    measure of an open mouth once read 22)."""
    for name, r in uv_alignment.items():
        assert r["after"]["lips"] <= r["before"]["lips"] + 0.1, (name, r)
        assert r["after"]["lips"] < 5.5, (name, r)


def test_a_noisy_jpeg_source_gives_the_clean_albedo(run, media):
    """The same portrait with sensor noise and strong JPEG: its albedo's colour is as
    smooth as the clean photo's (no blotches), and its skin's detail is the clean
    one's (pores and wrinkles kept, the noise not amplified by de-lighting)."""
    photo = cv2.imread(str(media / "obama_portrait.jpg"))
    rng = np.random.default_rng(0)
    noisy = np.clip(photo + rng.normal(0, 8, photo.shape), 0, 255).astype(np.uint8)
    noisy = cv2.imdecode(cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 35])[1], cv2.IMREAD_COLOR)
    rec = run.photo(photo)
    textures = {k: FaceSwap(run.bundle.layout, p, rec) for k, p in (("clean", photo), ("noisy", noisy))}
    skin = textures["clean"].masks.skin

    def detail(swap: FaceSwap) -> tuple[np.ndarray, float]:
        bgr = np.ascontiguousarray(swap.texture[..., :3])
        lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB).astype(np.float32)
        fine = lab - cv2.GaussianBlur(lab, (0, 0), 8)
        return fine[..., 0][skin], float(np.sqrt((fine[..., 1:] ** 2).sum(-1)[skin].mean()))

    (lum_c, chroma_c), (lum_n, chroma_n) = detail(textures["clean"]), detail(textures["noisy"])
    print(f"chroma detail {chroma_c:.2f} / {chroma_n:.2f}, luminance {lum_c.std():.2f} / {lum_n.std():.2f}")
    assert chroma_n < 1.15 * chroma_c + 0.1
    assert lum_n.std() < 1.3 * lum_c.std()
    assert np.corrcoef(lum_c, lum_n)[0, 1] > 0.6


def test_a_warm_half_shadowed_source_is_not_drawn_blue(run, shared):
    """A warm photo whose lit cheek is clipped and whose other cheek is in deep orange
    shadow (AFLW2000-3D dev image00968): its light is not taken for the skin's colour,
    so the face drawn on another person is skin-coloured (yellow, as the target's skin:
    Lab b* above half the target's), not blue, and not blotchy (mottle under 1.15). It
    read b* -16 and mottle 2.08 when the photo's light could take any colour."""
    folder = shared / "aflw2000"
    photo, target = (cv2.imread(str(folder / f"image00{n}.jpg")) for n in (968, 972))
    rec = run.target(target)
    out = run.render(target, rec, run.swap(photo, run.photo(photo)))
    mask = np.zeros(target.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(rec.landmarks[:27, :2].astype(np.int32)), 1)
    b_out, b_target = (
        float(cv2.cvtColor(im, cv2.COLOR_BGR2LAB)[..., 2][mask > 0].mean()) - 128 for im in (out, target)
    )
    mottle = ms.mottle_ratio(out, target, rec.landmarks)
    assert mottle is not None, "the target has colour: its mottle is measured"
    print(f"b* {b_out:.1f} against the target's {b_target:.1f}; mottle {mottle:.2f}")
    assert b_out > 0.5 * b_target
    assert mottle < 1.15


def test_a_colourless_camera_gets_a_colourless_face(run, talking, media):
    """A colour portrait swapped onto a grey camera's frames: with tone "live" the face
    takes the camera's lack of colour (no pink lips or colour blotches on a grey face);
    tone "source" keeps the portrait's colour, and a colour camera keeps more of it."""
    frames, recs, widest = talking
    i = widest[0]
    photo = cv2.imread(str(media / "biden_portrait.jpg"))
    source = run.photo(photo)
    grey = cv2.cvtColor(cv2.cvtColor(frames[i], cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    chroma = {}
    for tone in ("live", "source"):
        swap = FaceSwap(run.bundle.layout, photo, source, tone=tone)
        out = run.render(grey, recs[i], swap)
        chroma[tone] = ms.mottle(out, recs[i].landmarks), swap.chroma(recs[i].track_id)
    colour = FaceSwap(run.bundle.layout, photo, source)
    run.render(frames[i], recs[i], colour)
    print(chroma, colour.chroma(recs[i].track_id))
    assert chroma["live"][1] < 0.3 and chroma["source"][1] == 1.0
    assert chroma["live"][0] < 0.5 * chroma["source"][0], chroma
    assert colour.chroma(recs[i].track_id) > 2 * chroma["live"][1]


@pytest.fixture(scope="module")
def small(run):
    """A small run of the benchmark: 12 frames of carphone at 352 x 288, 2 pairs, no
    ablation."""
    return sq.run_benchmark(
        run,
        clips=(("carphone_176x144.mp4", 352, 288),),
        portraits=(),
        pairs=2,
        frames=12,
        identity=dlib_ok(),
        progress=False,
        ablate=False,
    )


def test_passthrough_is_lossless_to_the_measure(small):
    assert small["summary"]["passthrough_psnr_db"] > 35


def test_self_swap_beats_a_flat_grey_texture(small):
    clip = small["clips"]["carphone_176x144.mp4"]
    mine = clip["configs"]["default"]
    print({k: round(v, 3) for k, v in mine.items()})
    assert mine["self_psnr"] > clip["grey_psnr"] + 1.0
    assert mine["edge_ratio"] < 1.5 and mine["flicker_ratio"] < 2.0 and mine["mottle"] < 1.5


def test_outputs_are_nearer_the_source(small):
    need(dlib_ok(), "dlib and face-recognition-models are not installed (pip install -e '.[eval]')")
    rows = small["identity"]
    assert len(rows) >= 1
    for pair in rows:
        assert pair["to_source"] < pair["to_target"], pair
        assert pair["to_source"] < pair["source_to_target"], pair  # the untouched target's distance


def test_ablation_table_and_contact_sheet(run, small):
    table = sq.ablation_table(small["ablation"])
    assert table.splitlines()[1].startswith("default")
    picture = sheet.contact_sheet(run.sheet)
    assert picture.shape[1] == 3 * sheet.TILE and picture.shape[0] > 2 * sheet.TILE


def test_full_resolution_crops_are_the_pixels_themselves(media):
    """The contact sheet's full-resolution rows show the frame's own pixels, unscaled:
    what a viewer of the video sees."""
    photo = cv2.imread(str(media / "biden_portrait.jpg"))
    lm = np.array([[300.0, 500.0], [700.0, 500.0], [500.0, 900.0]])
    crop = sheet.full_crop(photo, lm)
    assert crop.shape[:2] == (sheet.FULL, sheet.FULL)
    x0, y0 = 500 - sheet.FULL // 2, 700 - sheet.FULL // 2
    assert np.array_equal(crop, photo[y0 : y0 + sheet.FULL, x0 : x0 + sheet.FULL])
    row = sheet.Row(photo, photo, photo, lm, "1:1", full=True)
    assert sheet.contact_sheet([row]).shape[1] == 2 * sheet.FULL


def test_measures():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 160, 3), np.uint8)
    lm = np.stack([40 + 80 * rng.random(68), 20 + 80 * rng.random(68)], 1)
    face = ms.face_hull(img.shape, lm)
    assert ms.psnr(img, img, face) == ms.PSNR_CAP and ms.ssim(img, img, face) == pytest.approx(1.0)
    noisy = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    assert 25 < ms.psnr(noisy, img, face) < 35 and ms.ssim(noisy, img, face) < 0.999
    band = ms.boundary_band(img.shape, lm)
    assert band.any() and (band & face).any() and (band & ~face).any()
    # Blotches of colour raise the mottle; a smooth colour change does not.
    skin = np.full((200, 200, 3), (120, 150, 200), np.uint8)
    box = np.stack([50 + 100 * rng.random(68), 50 + 100 * rng.random(68)], 1)
    box[:4] = [[50, 50], [150, 50], [50, 150], [150, 150]]
    blotchy = skin.copy()
    blotchy[::8, ::8] = (150, 120, 230)
    blotchy = cv2.GaussianBlur(blotchy, (0, 0), 1.0)
    assert ms.mottle_ratio(blotchy, blotchy, box) == pytest.approx(1.0)
    assert ms.mottle(blotchy, box) > 3 * ms.mottle(cv2.GaussianBlur(skin, (0, 0), 1.0), box) + 0.5


def test_missing_dlib_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib raises ImportError
    with pytest.raises(ident.IdentityUnavailable) as e:
        ident.Identity()
    msg = str(e.value)
    assert "\n" not in msg and "pip install -e '.[eval]'" in msg


def test_evaluate_dispatches_the_swap_subcommand(tmp_path, capsys):
    """``python -m realtime.eval swap`` runs the benchmark its flags ask for (one small
    clip, no pairs, no portraits, no ablation) and writes its JSON, contact sheet and
    summary."""
    from realtime.eval.__main__ import main

    flags = ["--pairs", "0", "--frames", "4", "--clips", "kpa_webcam_160x120.avi", "--portraits"]
    assert main(["swap", *flags, "--no-ablation", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "swap_quality.json").read_text())
    clip = res["clips"]["kpa_webcam_160x120.avi"]
    assert clip["frames"] == 4 and clip["size"] == "640x480" and list(clip["configs"]) == ["default"]
    assert res["summary"]["passthrough_psnr_db"] > 35 and res["summary"]["self_psnr_db"] > 15
    assert res["identity"] == {"skipped": "not asked"} and res["relit"] == {}
    assert cv2.imread(str(tmp_path / "swap_quality.png")) is not None
    assert "wrote" in capsys.readouterr().out
