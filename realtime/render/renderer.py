"""Draws effects onto faces with OpenGL: the frame as background, then each face's
dense mesh textured from UV space, blended through a feathered face region.

All per-frame data goes to the GPU as whole numpy arrays into buffers made once
(positions, normals), so no Python runs per vertex. The framebuffer holds the
image in memory order (row 0 = top, BGR), so reading it back is one call with no
flip or channel swap; the window flips and swizzles when it draws it.
"""

from __future__ import annotations

import time
from pathlib import Path

import moderngl
import numpy as np

from realtime.render.context import create_context
from realtime.render.effects import TEX, Effect, effect_region, get_effect
from realtime.types import Reconstruction
from realtime.uv import UVLayout, grid_triangles

SHADERS = Path(__file__).resolve().parents[2] / "shaders"
MESH_PROGRAMS = {
    "mask": "mask.frag",
    "metal": "metal.frag",
    "swap": "swap.frag",
    "depth": "depth.frag",
    "depth_only": "depth_only.frag",
}
SURFACE_EFFECTS = ("mask", "metal", "swap", "depth")
WIRE_STEP = 32  # wireframe lines per UV side, whatever the layout resolution
# Software rasterisers pay per triangle (about 0.3 us each on llvmpipe), so there the
# mesh is drawn over every 2nd UV row and column: a quarter of the triangles, the same
# texture detail (UVs are interpolated per pixel) and a coarser but smooth surface.
SOFTWARE_GL = ("llvmpipe", "softpipe", "swiftshader", "software")


def load_program(ctx: moderngl.Context, vertex: str, fragment: str) -> moderngl.Program:
    """A program from two files in shaders/."""
    return ctx.program(
        vertex_shader=(SHADERS / vertex).read_text(), fragment_shader=(SHADERS / fragment).read_text()
    )


def _set(prog: moderngl.Program, name: str, value: object) -> None:
    """Set a uniform the compiler kept (unused ones are optimised away)."""
    if name in prog:
        prog[name].value = value


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray, sign: float = 1.0) -> np.ndarray:
    """(F, 3) unit area-weighted vertex normals; bincount keeps it vectorised."""
    v = vertices
    fn = np.cross(v[triangles[:, 1]] - v[triangles[:, 0]], v[triangles[:, 2]] - v[triangles[:, 0]])
    idx = triangles.ravel()
    out = np.empty_like(v, dtype=np.float32)
    for c in range(3):
        out[:, c] = np.bincount(idx, weights=np.repeat(fn[:, c], 3), minlength=len(v))
    out *= sign / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    return out


def mesh_triangles(layout: UVLayout, step: int) -> np.ndarray:
    """(T, 3) int32 triangles over every ``step``-th UV row and column, indexing the
    full dense vertex order (step 1 is the layout's own mesh)."""
    if step <= 1:
        return np.ascontiguousarray(layout.triangles, np.int32)
    index = -np.ones(layout.face_mask.shape, np.int64)
    index[layout.face_mask] = np.arange(layout.face_mask.sum())
    sub = index[::step, ::step]
    tris = grid_triangles(sub >= 0)
    return sub[sub >= 0][tris].astype(np.int32)


def grid_lines(face_mask: np.ndarray, step: int) -> np.ndarray:
    """(L, 2) int32 vertex pairs: the UV grid's every ``step``-th row and column, for a
    wireframe that stays readable however dense the mesh is."""
    index = -np.ones(face_mask.shape, np.int64)
    index[face_mask] = np.arange(face_mask.sum())
    rows = index[::step]
    cols = index[:, ::step].T
    pairs = [np.stack([g[:, :-1].ravel(), g[:, 1:].ravel()], 1) for g in (rows, cols)]
    pairs = np.concatenate(pairs)
    return pairs[(pairs >= 0).all(1)].astype(np.int32)


def _thick_segments(segments: np.ndarray, width: float) -> np.ndarray:
    """(N, 2, 3) segments -> (N * 6, 3) triangle vertices of screen-space bars (core GL
    draws only 1 px lines)."""
    d = segments[:, 1, :2] - segments[:, 0, :2]
    perp = np.stack([-d[:, 1], d[:, 0]], 1) / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    off = np.concatenate([perp * width / 2, np.zeros((len(d), 1))], 1)
    a0, a1 = segments[:, 0] - off, segments[:, 0] + off
    b0, b1 = segments[:, 1] - off, segments[:, 1] + off
    return np.stack([a0, a1, b0, a1, b1, b0], 1).reshape(-1, 3).astype(np.float32)


class _FaceSlot:
    """GPU buffers for one face, reused every frame."""

    def __init__(self, ctx: moderngl.Context, n_vertices: int):
        self.pos = ctx.buffer(reserve=n_vertices * 12)
        self.nrm = ctx.buffer(reserve=n_vertices * 12)
        self.vaos: dict[str, moderngl.VertexArray] = {}


class Renderer:
    """Renders frames with faces for one UV layout; create once on the GL thread.

    ``render(image, reconstructions, effect)`` draws and, when ``read`` is true,
    returns the result as (H, W, 3) uint8 BGR; ``output`` is the texture holding it
    (for the window, so showing a frame needs no read-back)."""

    def __init__(
        self,
        layout: UVLayout,
        width: int,
        height: int,
        ctx: moderngl.Context | None = None,
        mesh_step: int | None = None,
    ):
        self.ctx = ctx if ctx is not None else create_context()
        self.layout = layout
        ctx = self.ctx
        if mesh_step is None:
            renderer = ctx.info.get("GL_RENDERER", "").lower()
            mesh_step = 2 if any(s in renderer for s in SOFTWARE_GL) else 1
        self.mesh_step = mesh_step
        self.n_vertices = len(layout.face_ind)
        self.triangles = mesh_triangles(layout, mesh_step)
        self.normal_sign = 1.0
        n = vertex_normals(layout.canonical, self.triangles)
        if n[:, 2].mean() < 0:  # make normals point at the camera (+z) for this winding
            self.normal_sign = -1.0
        self.uv_buf = ctx.buffer(np.ascontiguousarray(layout.vertex_uv, np.float32))
        self.tri_buf = ctx.buffer(self.triangles)
        region = effect_region(layout, TEX)
        # Masks and swaps draw only the triangles they can colour: the rest of the
        # mesh (forehead, ears, neck) could otherwise hide the face where a rough
        # reconstruction folds, and costs time for nothing.
        uv = np.round(layout.vertex_uv * (TEX - 1)).astype(np.int64)
        touches = region[uv[:, 1], uv[:, 0], 0][self.triangles].max(1) > 0
        self.region_tri_buf = ctx.buffer(np.ascontiguousarray(self.triangles[touches]))
        step = max(1, layout.resolution // WIRE_STEP)
        self.wire_buf = ctx.buffer(grid_lines(layout.face_mask, step))
        self.programs = {k: load_program(ctx, "mesh.vert", f) for k, f in MESH_PROGRAMS.items()}
        self.flat = load_program(ctx, "flat.vert", "flat.frag")
        self.background = load_program(ctx, "background.vert", "background.frag")
        quad = np.array([-1, -1, 1, -1, -1, 1, 1, 1], np.float32)
        self.quad_buf = ctx.buffer(quad)
        self.quad = ctx.vertex_array(self.background, [(self.quad_buf, "2f", "in_vert")])
        self.overlay_buf = ctx.buffer(reserve=4096)
        self.overlay_vao = ctx.vertex_array(self.flat, [(self.overlay_buf, "3f", "in_pos")])
        self.region = ctx.texture((TEX, TEX), 2, np.ascontiguousarray(region), alignment=1)
        self.region.filter = moderngl.LINEAR, moderngl.LINEAR
        self.slots: list[_FaceSlot] = []
        self.textures: dict[int, tuple[int, moderngl.Texture]] = {}
        self.named: dict[str, Effect] = {}
        self.size = (0, 0)
        self.frame_tex = self.color = self.depth = self.fbo = None
        self.resize(width, height)

    # -- setup -----------------------------------------------------------------------
    def resize(self, width: int, height: int) -> None:
        """(Re)make the frame texture and framebuffer for a new frame size."""
        if (width, height) == self.size:
            return
        for obj in (self.frame_tex, self.color, self.depth, self.fbo):
            if obj is not None:
                obj.release()
        ctx = self.ctx
        self.size = (width, height)
        self.frame_tex = ctx.texture((width, height), 3, alignment=1)
        self.frame_tex.filter = moderngl.NEAREST, moderngl.NEAREST
        self.color = ctx.texture((width, height), 4)
        self.color.filter = moderngl.LINEAR, moderngl.LINEAR
        self.depth = ctx.depth_renderbuffer((width, height))
        self.fbo = ctx.framebuffer([self.color], self.depth)
        for prog in (*self.programs.values(), self.flat):
            _set(prog, "u_size", (float(width), float(height)))
            _set(prog, "u_zscale", 1.0 / (8.0 * max(width, height)))
            _set(prog, "u_tex_size", float(TEX))

    def effect(self, effect: Effect | str) -> Effect:
        """An Effect from a name (built once and kept) or passed through."""
        if isinstance(effect, Effect):
            return effect
        if effect not in self.named:
            self.named[effect] = get_effect(effect, self.layout)
        return self.named[effect]

    def add_effect(self, effect: Effect) -> None:
        """Make ``effect`` available by its name (e.g. the face swap as "swap")."""
        self.named[effect.name] = effect

    def _texture(self, effect: Effect) -> moderngl.Texture:
        """The effect's texture on the GPU, uploaded again only when it changed."""
        held = self.textures.get(id(effect))
        if held is not None and held[0] == effect.version:
            return held[1]
        img = np.ascontiguousarray(effect.texture, np.uint8)
        size = (img.shape[1], img.shape[0])
        if held is not None and held[1].size == size:
            tex = held[1]
            tex.write(img)
        else:
            if held is not None:
                held[1].release()
            tex = self.ctx.texture(size, 4, img, alignment=1)
        tex.build_mipmaps()
        tex.filter = moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR
        self.textures[id(effect)] = (effect.version, tex)
        return tex

    def _slot(self, i: int) -> _FaceSlot:
        while len(self.slots) <= i:
            self.slots.append(_FaceSlot(self.ctx, self.n_vertices))
        return self.slots[i]

    def _vao(self, slot: _FaceSlot, name: str) -> moderngl.VertexArray:
        if name not in slot.vaos:
            if name == "wire":
                slot.vaos[name] = self.ctx.vertex_array(
                    self.flat, [(slot.pos, "3f", "in_pos")], index_buffer=self.wire_buf, index_element_size=4
                )
            else:
                program, _, part = name.partition(":")
                prog = self.programs[program]
                content = [
                    (b, f, a)
                    for b, f, a in (
                        (slot.pos, "3f", "in_pos"),
                        (self.uv_buf, "2f", "in_uv"),
                        (slot.nrm, "3f", "in_normal"),
                    )
                    if a in prog
                ]
                tris = self.region_tri_buf if part == "region" else self.tri_buf
                slot.vaos[name] = self.ctx.vertex_array(
                    prog, content, index_buffer=tris, index_element_size=4
                )
        return slot.vaos[name]

    # -- per frame -------------------------------------------------------------------
    @property
    def output(self) -> moderngl.Texture:
        """The rendered frame (BGRA, row 0 = top) for drawing in a window."""
        return self.color

    def render(
        self, image: np.ndarray, faces: list[Reconstruction], effect: Effect | str = "none", read: bool = True
    ) -> np.ndarray | None:
        """Draw ``image`` (H, W, 3) uint8 BGR with ``effect`` on ``faces``; return the
        result as BGR uint8 when ``read`` (else None: call ``read()`` later if needed)."""
        h, w = image.shape[:2]
        self.resize(w, h)
        ctx = self.ctx
        eff = self.effect(effect)
        self.frame_tex.write(np.ascontiguousarray(image, np.uint8))
        self.fbo.use()
        ctx.viewport = (0, 0, w, h)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND | moderngl.CULL_FACE)
        self.fbo.clear(depth=1.0)
        self.frame_tex.use(0)
        self.background["u_frame"] = 0
        self.quad.render(moderngl.TRIANGLE_STRIP)
        if faces and eff.program != "none":
            for i, rec in enumerate(faces):
                slot = self._slot(i)
                slot.pos.write(np.ascontiguousarray(rec.vertices, np.float32))
                if eff.program == "metal":
                    slot.nrm.write(vertex_normals(rec.vertices, self.triangles, self.normal_sign))
            if eff.program in SURFACE_EFFECTS:
                self._draw_surfaces(image, faces, eff)
            else:
                self._draw_overlays(faces, eff)
        return self.read() if read else None

    def _draw_surfaces(self, image: np.ndarray, faces: list[Reconstruction], eff: Effect) -> None:
        ctx = self.ctx
        ctx.enable(moderngl.DEPTH_TEST)
        # Pass 1: depth only, so that pass 2 colours just the nearest surface.
        part = "" if eff.program == "depth" else ":region"
        ctx.depth_func = "<"
        self.fbo.color_mask = (False, False, False, False)
        self.fbo.use()  # moderngl applies a framebuffer's masks when it is bound
        for i in range(len(faces)):
            self._vao(self.slots[i], "depth_only" + part).render(moderngl.TRIANGLES)
        self.fbo.color_mask = (True, True, True, True)
        self.fbo.depth_mask = False
        self.fbo.use()
        ctx.depth_func = "<="
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        prog = self.programs[eff.program]
        self.region.use(1)
        _set(prog, "u_region", 1)
        if eff.texture is not None:
            self._texture(eff).use(0)
            _set(prog, "u_tex", 0)
        _set(prog, "u_opacity", float(eff.opacity))
        for i, rec in enumerate(faces):
            if eff.program == "depth":
                z = rec.vertices[:, 2]
                _set(prog, "u_zrange", (float(z.max()), float(z.min())))
            for name, value in eff.face_uniforms(image, rec).items():
                _set(prog, name, value)
            self._vao(self.slots[i], eff.program + part).render(moderngl.TRIANGLES)
        self.fbo.depth_mask = True
        self.fbo.use()
        ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND)

    def _draw_overlays(self, faces: list[Reconstruction], eff: Effect) -> None:
        """Landmarks, wireframe or pose axes, drawn over everything."""
        ctx = self.ctx
        ctx.enable(moderngl.BLEND | moderngl.PROGRAM_POINT_SIZE)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        prog = self.flat
        unit = max(self.size) / 640.0
        for i, rec in enumerate(faces):
            if eff.program == "wireframe":
                _set(prog, "u_round", False)
                prog["u_color"].value = (0.3, 1.0, 0.3, 0.7)
                self._vao(self.slots[i], "wire").render(moderngl.LINES)
            elif eff.program == "landmarks":
                _set(prog, "u_round", True)
                _set(prog, "u_point_size", float(max(3.0, 4.0 * unit)))
                prog["u_color"].value = (0.2, 1.0, 0.2, 1.0)
                self._overlay(np.ascontiguousarray(rec.landmarks, np.float32), moderngl.POINTS)
            elif eff.program == "pose":
                _set(prog, "u_round", False)
                origin = rec.landmarks[30].astype(np.float64)
                length = 90.0 * rec.pose.scale
                for axis, colour in enumerate(((0.1, 0.1, 1.0), (0.1, 1.0, 0.1), (1.0, 0.3, 0.1))):
                    end = origin + rec.pose.rotation[:, axis] * length
                    bars = _thick_segments(np.array([[origin, end]]), max(2.0, 3.0 * unit))
                    prog["u_color"].value = (*colour, 1.0)
                    self._overlay(bars, moderngl.TRIANGLES)
        ctx.disable(moderngl.BLEND | moderngl.PROGRAM_POINT_SIZE)

    def _overlay(self, points: np.ndarray, mode: int) -> None:
        data = np.ascontiguousarray(points, np.float32)
        if data.nbytes > self.overlay_buf.size:
            self.overlay_buf.orphan(data.nbytes)
        self.overlay_buf.write(data)
        self.overlay_vao.render(mode, vertices=len(points))

    def read(self) -> np.ndarray:
        """The last rendered frame as a new (H, W, 3) uint8 BGR array."""
        w, h = self.size
        out = np.empty((h, w, 3), np.uint8)
        self.fbo.read_into(out, components=3, alignment=1)
        return out

    def release(self) -> None:
        """Free GPU objects (the context itself belongs to whoever made it)."""
        objs = [tex for _, tex in self.textures.values()]
        for slot in self.slots:
            objs += [*slot.vaos.values(), slot.pos, slot.nrm]
        objs += [
            self.quad,
            self.quad_buf,
            self.overlay_vao,
            self.uv_buf,
            self.tri_buf,
            self.region_tri_buf,
            self.wire_buf,
            self.overlay_buf,
            self.region,
            self.frame_tex,
            self.color,
            self.depth,
            self.fbo,
            *self.programs.values(),
            self.flat,
            self.background,
        ]
        for obj in objs:
            if obj is not None:
                obj.release()
        self.textures.clear()
        self.slots.clear()
        self.frame_tex = self.color = self.depth = self.fbo = None
        self.size = (0, 0)


def synthetic_faces(layout: UVLayout, width: int, height: int, n_faces: int) -> list[Reconstruction]:
    """``n_faces`` copies of the layout's mean face placed on a grid across the frame,
    each turned a little: stand-ins with a real mesh for benchmarks, no network needed."""
    from realtime.decode import Decoder, angles_to_rotation

    dec = Decoder(layout)
    cols = int(np.ceil(np.sqrt(n_faces)))
    rows = int(np.ceil(n_faces / cols))
    cell = min(width / cols, height / rows)
    faces = []
    for i in range(n_faces):
        r, c = divmod(i, cols)
        rot = angles_to_rotation(5.0, -20.0 + 40.0 * (i % 2), 3.0 * i)
        scale = 0.6 * cell / np.ptp(layout.canonical[:, 0])
        centre = np.array([(c + 0.5) * width / cols, (r + 0.5) * height / rows, 0.0])
        v = (layout.canonical.astype(np.float64) @ rot.T * scale + centre).astype(np.float32)
        faces.append(Reconstruction(i, v[dec.kpt_rows].copy(), v, dec.pose(v)))
    return faces


def render_benchmark(
    width: int,
    height: int,
    n_faces: int,
    frames: int,
    effect: str = "tiger",
    read: bool = True,
    ctx: moderngl.Context | None = None,
) -> float:
    """Mean milliseconds per rendered frame (upload, draw, read-back) at a frame size
    with ``n_faces`` faces, on a headless context unless one is given."""
    from realtime.weights import load_bundle

    layout = load_bundle().layout
    renderer = Renderer(layout, width, height, ctx)
    faces = synthetic_faces(layout, width, height, n_faces)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    for _ in range(3):  # warm-up: shader compiles, texture uploads
        renderer.render(image, faces, effect, read=read)
    renderer.ctx.finish()
    t0 = time.perf_counter()
    for _ in range(frames):
        renderer.render(image, faces, effect, read=read)
    renderer.ctx.finish()
    ms = (time.perf_counter() - t0) * 1000.0 / max(frames, 1)
    renderer.release()
    return ms
