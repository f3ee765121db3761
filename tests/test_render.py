"""Rendering, for real, on whatever OpenGL the machine has (Mesa's llvmpipe via EGL
on a headless CPU box). Faces come from two real sources: the teacher's 3DMM fits of
AFLW training crops (exact meshes, so the checks do not hang on how far the shipped
network has trained) and the shipped network on AFLW2000 photos. Both go through
the real Decoder, so "the face region" is the hull of the decoded landmarks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.io
import torch

from realtime.bench.components import synthetic_faces
from realtime.core.types import Reconstruction
from realtime.render.effects import DEBUG_VIEWS, MASKS, EffectError, get_effect
from realtime.render.effects.swap import DEFAULT_SHAPE, FaceSwap, SwapError
from realtime.render.renderer import Renderer

MODEL_NME_OK = 0.08  # the network's face is used for region checks only when it is this good


def crop_affine(points: np.ndarray, resolution: int) -> np.ndarray:
    """COMMON.md's face framing: a square 1.44x the landmark box, centred on it."""
    lo, hi = points.min(0), points.max(0)
    c, side = (lo + hi) / 2, 1.44 * (hi - lo).max()
    s = resolution / side
    return np.array([[s, 0, (resolution - 1) / 2 - c[0] * s], [0, s, (resolution - 1) / 2 - c[1] * s]])


@pytest.fixture(scope="module")
def network(bundle, decoder):
    """(image, 68 x 2 framing points) -> Reconstruction from the shipped network."""
    from realtime.live.engines import create_engine

    engine = create_engine(bundle, "eager")
    r = bundle.config.resolution

    def run(image: np.ndarray, points: np.ndarray, rounds: int = 1) -> Reconstruction:
        for _ in range(rounds):
            a = crop_affine(points, r)
            crop = cv2.warpAffine(image, a, (r, r), flags=cv2.INTER_AREA)
            x = torch.from_numpy(np.ascontiguousarray(crop[:, :, ::-1])).permute(2, 0, 1)[None].float() / 255
            rec = decoder.decode(engine(x), cv2.invertAffineTransform(a)[None], [0])[0]
            points = rec.landmarks[:, :2]
        return rec

    return run


@pytest.fixture(scope="module")
def aflw2000(shared):
    img = cv2.imread(str(shared / "aflw2000" / "image00006.jpg"))
    pts = scipy.io.loadmat(str(shared / "aflw2000" / "image00006.mat"))["pt3d_68"][:2].T
    return img, pts


def face_region(shape: tuple[int, ...], landmarks: np.ndarray, grow: float = 1.05) -> np.ndarray:
    """The hull of the 68 landmarks, enlarged about its centre."""
    p = landmarks[:, :2]
    c = p.mean(0)
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round((p - c) * grow + c).astype(np.int32)), 1)
    return m > 0


def check_confined(
    before: np.ndarray, after: np.ndarray, landmarks: np.ndarray, min_changed: int, grow: float = 1.05
) -> None:
    changed = (after != before).any(-1)
    assert changed.sum() >= min_changed, f"only {changed.sum()} pixels changed"
    inside = (changed & face_region(before.shape, landmarks, grow)).sum() / changed.sum()
    assert inside >= 0.95, f"{inside:.1%} of changed pixels inside the face region"
    far = ~face_region(before.shape, landmarks, 1.25)
    assert not (changed & far).any(), "pixels well outside the face changed"


def test_no_effect_is_the_frame(ctx, layout, teacher):
    img, rec = teacher(100)
    out = Renderer(layout, img.shape[1], img.shape[0], ctx).render(img, [rec], "none")
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.array_equal(out, img)


@pytest.mark.parametrize("name", MASKS)
@pytest.mark.parametrize("face", [100, 2000, 7000])
def test_mask_stays_on_the_face(ctx, layout, teacher, name, face):
    img, rec = teacher(face)
    out = Renderer(layout, img.shape[1], img.shape[0], ctx).render(img, [rec], name)
    check_confined(img, out, rec.landmarks, min_changed=5000)


def test_mask_on_network_face(ctx, layout, network, aflw2000):
    img, pts = aflw2000
    rec = network(img, pts)
    nme = np.linalg.norm(rec.landmarks[:, :2] - pts, axis=1).mean() / np.sqrt(np.prod(np.ptp(pts, 0)))
    out = Renderer(layout, img.shape[1], img.shape[0], ctx).render(img, [rec], "tiger")
    assert out.shape == img.shape and (out != img).any()
    if nme > MODEL_NME_OK:
        pytest.skip(
            f"shipped weights reconstruct this face at NME {nme:.2f} (> {MODEL_NME_OK}): "
            "too untrained for the 95% region check, which the teacher meshes cover"
        )
    check_confined(img, out, rec.landmarks, min_changed=2000)


def test_user_mask_png(ctx, layout, teacher, tmp_path):
    img, rec = teacher(2000)
    red = np.zeros((512, 512, 4), np.uint8)
    red[..., 2] = 255
    red[..., 3] = 255
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), red)
    out = Renderer(layout, img.shape[1], img.shape[0], ctx).render(img, [rec], f"mask:{path}")
    check_confined(img, out, rec.landmarks, min_changed=5000)
    core = face_region(img.shape, rec.landmarks, 0.6)
    b, g, r = out[core].mean(0)
    assert r > 100 and r > 3 * max(b, g), "the centre of the face should be painted red (lit by its light)"


def disc(shape: tuple[int, ...], centre: np.ndarray, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2


@pytest.mark.parametrize("face", [100, 7000])
def test_user_mask_is_upright(ctx, layout, teacher, tmp_path, face):
    """A mask red in the top half of UV space and blue in the bottom half: the face
    between the brows is reddened and the chin turns blue, so UV rows run forehead to
    chin as PRNet's layout says (a flipped v would swap the colours)."""
    img, rec = teacher(face)
    mask = np.zeros((256, 256, 4), np.uint8)
    mask[:128] = (0, 0, 255, 255)
    mask[128:] = (255, 0, 0, 255)
    path = tmp_path / "updown.png"
    cv2.imwrite(str(path), mask)
    out = Renderer(layout, img.shape[1], img.shape[0], ctx).render(img, [rec], f"mask:{path}")
    lm = rec.landmarks[:, :2]
    radius = 0.06 * np.ptp(lm[:, 0])
    between_brows = disc(img.shape, lm[[21, 22, 27]].mean(0), radius)  # above the eyes
    chin = disc(img.shape, (lm[57] + lm[8]) / 2, radius)  # below the mouth
    # Masks take the face's light, so compare the two places' hues, not levels.
    b, _, r = out[between_brows].astype(float).mean(0)
    assert r - b > 40, f"between the brows: red {r:.0f}, blue {b:.0f}; expected red"
    b, _, r = out[chin].astype(float).mean(0)
    assert b - r > 40, f"chin: red {r:.0f}, blue {b:.0f}; expected blue"


def test_bad_effects_say_what_to_do(layout, tmp_path):
    with pytest.raises(EffectError, match="unknown effect"):
        get_effect("sparkles", layout)
    with pytest.raises(EffectError, match="not found"):
        get_effect(f"mask:{tmp_path / 'missing.png'}", layout)
    cv2.imwrite(str(tmp_path / "wide.png"), np.zeros((10, 20, 3), np.uint8))
    with pytest.raises(EffectError, match="square"):
        get_effect(f"mask:{tmp_path / 'wide.png'}", layout)


def lab_mean(pixels: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(pixels.reshape(-1, 1, 3), cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(float).mean(0)


@pytest.mark.parametrize("live, source", [(100, 5000), (2000, 9000)])
def test_swap_changes_the_face_and_a_self_swap_barely(ctx, layout, teacher, live, source):
    """Another person's face changes the face region (and nothing far from it); the
    face's own photo as source gives back nearly the input: texture, light and seam
    put together reproduce a face."""
    img, rec = teacher(live)
    src_img, src_rec = teacher(source)
    renderer = Renderer(layout, img.shape[1], img.shape[0], ctx)
    out = renderer.render(img, [rec], FaceSwap(layout, src_img, src_rec))
    # The swap reaches a little past the landmarks' hull: the source's brows are drawn whole.
    check_confined(img, out, rec.landmarks, min_changed=5000, grow=1.15)
    core = face_region(img.shape, rec.landmarks, 0.7)
    assert (out != img).any(-1)[core].mean() > 0.5
    # As users get it (--swap-shape 1): the source's features, moved to the layout's
    # places in its texture, are drawn where its photo had them.
    same = renderer.render(img, [rec], FaceSwap(layout, img, rec, DEFAULT_SHAPE))
    shaped = renderer.render(img, [rec], FaceSwap(layout, src_img, src_rec, DEFAULT_SHAPE))
    other = np.abs(shaped[core].astype(int) - img[core]).mean()
    itself = np.abs(same[core].astype(int) - img[core]).mean()
    # (Not 0: the shine on the photo's skin is pressed down, its colour is a smooth
    # estimate, its features are moved to the layout's places, the mesh is resampled.)
    assert itself < 10 and itself < other / 2, f"self-swap moved the face {itself:.1f}, another {other:.1f}"


def test_swap_takes_the_live_light(ctx, layout, teacher):
    """The same swap on a face and on that face re-lit from the image's left: the
    output's left cheek brightens against its right like the input's (the source's
    own light stays behind)."""
    from realtime.render.effects.relight import Relight
    from realtime.render.lighting import directional_light

    img, rec = teacher(100)  # near frontal, so both cheeks are seen
    src_img, src_rec = teacher(9000)
    r = Renderer(layout, img.shape[1], img.shape[0], ctx)
    relit = r.render(img, [rec], Relight(light=directional_light(np.array([-0.8, -0.3, 0.5]), 0.35, 1.1)))
    lm = rec.landmarks[:, :2]
    radius = 0.07 * np.ptp(lm[:, 0])
    left, right = (
        disc(img.shape, (lm[1] + lm[31]) / 2, radius),
        disc(img.shape, (lm[15] + lm[35]) / 2, radius),
    )
    grey = lambda a: cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(float)  # noqa: E731
    balance = lambda a: grey(a)[left].mean() / grey(a)[right].mean()  # noqa: E731
    plain = r.render(img, [rec], FaceSwap(layout, src_img, src_rec))
    lit = r.render(relit, [rec], FaceSwap(layout, src_img, src_rec))
    want = balance(relit) / balance(img)
    got = balance(lit) / balance(plain)
    assert want > 1.2 and got > 1 + 0.5 * (want - 1), f"input left/right x{want:.2f}, swap x{got:.2f}"


def test_swap_from_network_and_switch_at_run_time(ctx, layout, teacher, network, media):
    img, rec = teacher(100)
    photo = cv2.imread(str(media / "obama_portrait.jpg"))
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    x, y, w, h = max(
        cascade.detectMultiScale(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(60, 60)),
        key=lambda b: b[2] * b[3],
    )
    src = network(photo, np.array([[x, y + 0.1 * h], [x + w, y + 1.05 * h]]), rounds=2)
    renderer = Renderer(layout, img.shape[1], img.shape[0], ctx)
    swap = FaceSwap(layout)
    other_img, other_rec = teacher(5000)
    try:
        swap.set_source_face(photo, src)
    except SwapError as e:  # an untrained network may see no usable face
        swap.set_source_face(other_img, other_rec)
        print(f"network source unusable ({e}); used a teacher face")
    first = renderer.render(img, [rec], swap)
    # Confined to the face: the landmarks' hull and the brows drawn whole above it.
    assert not ((first != img).any(-1) & ~face_region(img.shape, rec.landmarks, 1.2)).any()
    v = swap.version
    swap.set_source_face(*teacher(9000))
    assert swap.version == v + 1
    second = renderer.render(img, [rec], swap)
    core = face_region(img.shape, rec.landmarks, 0.7)
    assert np.abs(second[core].astype(int) - first[core]).mean() > 2, "switching source changed nothing"


def test_swap_rejects_a_mismatched_source(layout, teacher):
    img, rec = teacher(100)
    bad = Reconstruction(0, rec.landmarks, rec.vertices[:100], rec.pose)
    with pytest.raises(SwapError, match="vertices"):
        FaceSwap(layout, img, bad)


def test_nearer_face_hides_farther(ctx, layout, teacher):
    img, rec = teacher(2000)
    near = rec
    far_v = rec.vertices + np.array([60.0, 0.0, -500.0], np.float32)
    far = Reconstruction(1, rec.landmarks + np.array([60.0, 0, -500], np.float32), far_v, rec.pose)
    r = Renderer(layout, img.shape[1], img.shape[0], ctx)
    alone = r.render(img, [near], "grid")
    both = r.render(img, [far, near], "grid")  # drawn in the "wrong" order on purpose
    core = face_region(img.shape, near.landmarks, 0.6)
    assert np.array_equal(both[core], alone[core])


@pytest.mark.parametrize("view", DEBUG_VIEWS)
def test_debug_views_draw_near_the_face(ctx, layout, teacher, view):
    img, rec = teacher(7000)
    out = Renderer(layout, img.shape[1], img.shape[0], ctx).render(img, [rec], view)
    changed = (out != img).any(-1)
    assert changed.sum() > 50
    if view != "pose":  # the axes reach out of the face by design
        lo = np.floor(rec.vertices[:, :2].min(0)).astype(int) - 2
        hi = np.ceil(rec.vertices[:, :2].max(0)).astype(int) + 3
        changed[max(lo[1], 0) : hi[1], max(lo[0], 0) : hi[0]] = False
        assert not changed.any(), "a debug view drew away from the mesh"
    if view == "landmarks":
        x, y = np.round(rec.landmarks[30, :2]).astype(int)
        b, g, r = out[y, x]
        assert g > 200 and r < 100


def test_frame_size_changes(ctx, layout):
    r = Renderer(layout, 640, 480, ctx)
    for w, h in ((640, 480), (320, 240), (1280, 720), (641, 361)):
        img = np.full((h, w, 3), 77, np.uint8)
        out = r.render(img, synthetic_faces(layout, w, h, 2), "metal")
        assert out.shape == (h, w, 3)
        assert (out != 77).any(-1).mean() > 0.02
        assert (out[0, 0] == 77).all()


def test_render_without_read_back(ctx, layout):
    r = Renderer(layout, 320, 240, ctx)
    img = np.zeros((240, 320, 3), np.uint8)
    assert r.render(img, synthetic_faces(layout, 320, 240, 1), "tiger", read=False) is None
    assert r.read().shape == (240, 320, 3) and r.read().any()


def test_benchmark_faces_are_all_drawn(ctx, layout):
    """render_benchmark times synthetic_faces: each of them must really be drawn, in
    its own grid cell, or the benchmark would time less work than it says."""
    w, h, n = 320, 240, 4
    img = np.full((h, w, 3), 77, np.uint8)
    out = Renderer(layout, w, h, ctx).render(img, synthetic_faces(layout, w, h, n), "tiger")
    changed = (out != img).any(-1)
    cell = min(w // 2, h // 2)
    for r in range(2):
        for c in range(2):
            part = changed[r * h // 2 : (r + 1) * h // 2, c * w // 2 : (c + 1) * w // 2]
            assert part.mean() > 0.1 * (cell * cell) / part.size, f"face in cell ({r}, {c}) not drawn"


def test_swap_shape_takes_the_source_face_shape(layout, teacher):
    """--swap-shape 1 puts the source's face shape (in the face's own frame) on the
    live pose, easing back to the live mesh at the mesh's outer edge (so the frame
    warped with it meets the rest of the frame); 0 keeps the live mesh. The lids and
    lips are left out: there the live face's own shape is moved with its surroundings."""
    from dataclasses import replace

    from realtime.render.effects.swap_shape import expression_zone, pose_free, warp_weight

    _, live = teacher(10)
    source_img, source = teacher(40)
    kept = FaceSwap(layout, source_img, source, shape=0.0).vertices(live)
    swap = FaceSwap(layout, source_img, source, shape=1.0)
    shaped = swap.vertices(live)
    assert np.array_equal(kept, live.vertices)
    inner = (warp_weight(layout) > 0.999) & ~expression_zone(layout)
    target = swap.face_shape.source  # the source's shape, pose-free (its features aligned)
    before = np.abs(pose_free(live) - target)[inner].mean()
    after = np.abs(pose_free(replace(live, vertices=shaped)) - target)[inner].mean()
    assert inner.mean() > 0.5 and before > 0.01 and after < 0.05 * before
    edge = warp_weight(layout) < 1e-6
    assert edge.any() and np.abs(shaped - live.vertices)[edge].max() < 1e-3


def test_swap_lips_and_lids_open_and_close_with_the_live_face(layout, teacher, decoder):
    """The source's mouth and eyes as its photo had them do not carry over: at
    --swap-shape 1, a source whose mouth is open and eyes shut, drawn on a live face
    with its mouth closed and eyes open, is drawn closed and open, and the other way
    round: the lips and lids are as open as the live face's."""
    from dataclasses import replace

    from realtime.core.landmarks import LID_PAIRS

    img, face = teacher(100)  # near frontal
    uv = layout.vertex_uv * (layout.resolution - 1)
    k = layout.kpt_ind.T.astype(float)
    unit = np.linalg.norm(face.landmarks[48, :2] - face.landmarks[54, :2])  # the mouth's width
    v = face.vertices.copy()
    lip = (uv[:, 1] > k[66, 1] - 0.5) & (np.abs(uv[:, 0] - k[66, 0]) < 0.6 * np.ptp(k[48:60, 0]))
    v[lip, 1] += (unit / 3) * np.clip((k[57, 1] + 4 - uv[lip, 1]) / 4, 0, 1)  # the lower lip drops
    for up, down in LID_PAIRS:  # the upper lids come down to the lower ones
        near = np.linalg.norm(uv - k[up], axis=1) < 2.0
        v[near, :2] += face.vertices[decoder.kpt_rows[down], :2] - face.vertices[decoder.kpt_rows[up], :2]
    moved = replace(face, vertices=v, landmarks=v[decoder.kpt_rows])
    assert (
        np.linalg.norm(moved.landmarks[66] - moved.landmarks[62])
        > np.linalg.norm(face.landmarks[66] - face.landmarks[62]) + 0.25 * unit
    )
    for source, live in ((moved, face), (face, moved)):
        drawn = FaceSwap(layout, img, source, shape=1.0).vertices(live)[decoder.kpt_rows]
        for a, b in ((62, 66), *LID_PAIRS):
            want = np.linalg.norm(live.landmarks[a, :2] - live.landmarks[b, :2])
            got = np.linalg.norm(drawn[a, :2] - drawn[b, :2])
            assert abs(got - want) < 0.05 * unit, f"points {a}-{b}: live {want:.1f} px apart, drawn {got:.1f}"


@pytest.mark.parametrize("name", ["tiger", "depth", "landmarks"])
def test_faces_only_upload_and_read_back_give_the_same_picture(ctx, layout, teacher, name):
    """``whole_frame`` off (no window: only the faces' boxes go up and come back) gives
    the same bytes as the whole frame, with two faces (one partly off the frame), over
    frames that change (a stale box from the last frame must not show)."""
    img, rec = teacher(2000)
    off = np.float32([0.45 * img.shape[1], 40, 0])  # the second face reaches past the right edge
    far = Reconstruction(1, rec.landmarks + off, rec.vertices + off, rec.pose)
    whole, boxed = (
        Renderer(layout, img.shape[1], img.shape[0], ctx),
        Renderer(layout, img.shape[1], img.shape[0], ctx),
    )
    boxed.whole_frame = False
    for shift in (0, 7, -5):
        frame = np.roll(img, shift, axis=1)
        faces = [rec, far] if shift else [rec]
        want = whole.render(frame, faces, name)
        assert boxed.render(frame, faces, name, read=False) is None
        assert np.array_equal(boxed.read(), want)
    assert np.array_equal(boxed.render(img, [], name), img)


@pytest.mark.parametrize("name", ["tiger", "metal"])
def test_a_small_face_drawn_coarser_looks_the_same(ctx, layout, teacher, name):
    """On a software rasteriser a small face gets a coarser mesh (step_for: fewer
    triangles, the texture unchanged): four faces in a 640x480 frame are about this
    size. Its picture must stay the fine mesh's: the same pixels painted, nearly the
    same colours."""
    import dataclasses

    img, rec = teacher(2000)
    s = 0.25  # a 480 px photo's face, about 100 px wide, in a 120 px frame
    small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    shrink = np.float32([s, s, s])
    shift = np.float32([0.5 * s - 0.5, 0.5 * s - 0.5, 0])
    face = dataclasses.replace(
        rec, landmarks=rec.landmarks * shrink + shift, vertices=rec.vertices * shrink + shift
    )
    coarse, fine = (Renderer(layout, small.shape[1], small.shape[0], ctx) for _ in range(2))
    fine.max_step = fine.mesh_step  # the one step for every face, as before
    want, got = fine.render(small, [face], name), coarse.render(small, [face], name)
    if coarse.max_step == coarse.mesh_step:
        pytest.skip("a hardware rasteriser draws every face with one mesh")
    assert coarse.slots[0].step > fine.slots[0].step
    painted, painted_fine = (got != small).any(-1), (want != small).any(-1)
    assert painted_fine.sum() > 2000
    assert (painted ^ painted_fine).sum() <= 0.03 * painted_fine.sum()
    diff = np.abs(got.astype(int) - want.astype(int))[painted_fine]
    assert diff.mean() < 3.5, diff.mean()  # 2.2 (tiger) / 2.9 (metal) at step 3
