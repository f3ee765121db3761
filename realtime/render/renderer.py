"""Draws effects onto faces with OpenGL: the frame as background, then each face's
dense mesh textured from UV space, blended through a feathered face region.

The frame goes straight into the framebuffer's colour texture (one upload, no
full-frame draw: on a software rasteriser a full-screen pass costs about a
millisecond at 640x480); a copy the shaders can sample is uploaded only for effects
that read the frame.

All per-frame data goes to the GPU as whole numpy arrays into buffers made once
(positions, normals), so no Python runs per vertex. The framebuffer holds the
image in memory order (row 0 = top, BGR), so reading it back is one call with no
flip or channel swap; the window flips and swizzles when it draws it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import cv2
import moderngl
import numpy as np

from realtime.core.paths import SHADERS
from realtime.core.types import Reconstruction, Visibility
from realtime.core.uv import UVLayout, grid_triangles
from realtime.render.context import GilFreeSync, create_context
from realtime.render.effects import Effect, get_effect
from realtime.render.effects.uvdraw import TEX, effect_region
from realtime.render.lighting import MeshNormals
from realtime.render.overlay import GLOverlay
from realtime.render.overlay import set_uniform as _set

DEPTH_ONLY = "depth_only.frag"  # the first pass of every surface effect
#: The feathered region is smooth: 256 x 256 holds it, and a small texture samples fast
#: on a software rasteriser (it has no mip-maps).
REGION_TEX = 256
FACE_UNITS = 3  # texture units from here on hold per-face textures (0 effect, 1 region, 2 frame)
WIRE_STEP = 32  # wireframe lines per UV side, whatever the layout resolution
# Software rasterisers pay per triangle (about 0.3 us each on llvmpipe), so there the
# mesh is drawn over every 2nd UV row and column: a quarter of the triangles, the same
# texture detail (UVs are interpolated per pixel) and a coarser but smooth surface.
SOFTWARE_GL = ("llvmpipe", "softpipe", "swiftshader", "software")
#: On a software rasteriser a small face is drawn over a coarser grid still: every
#: ``step``-th row and column, the largest step (up to MAX_STEP) whose triangles stay
#: within TRIANGLE_PX pixels on screen. Four faces tiled in a 640x480 frame (about
#: 0.9 px a UV texel) then take step 3 instead of 2: 44 % of the triangles, the texture
#: unchanged. A 100 px face drawn so differs from step 2's by 2-3 grey levels on
#: average, at the nose and lips of a turned face (step 4: 4-5, the lips visibly).
TRIANGLE_PX = 3.0
MAX_STEP = 4


def _source(name: str) -> str:
    """A shader file's text, each ``#include "FILE"`` line replaced by that file of
    shaders/ (GLSL 3.30 has no includes; the lit shaders share lighting.glsl)."""
    lines = (SHADERS / name).read_text().splitlines()
    out = [_source(line.split('"')[1]) if line.startswith("#include") else line for line in lines]
    return "\n".join(out) + "\n"


def load_program(ctx: moderngl.Context, vertex: str, fragment: str) -> moderngl.Program:
    """A program from two files in shaders/."""
    return ctx.program(vertex_shader=_source(vertex), fragment_shader=_source(fragment))


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


def visibility_matrix(vis: Visibility) -> np.ndarray:
    """(3, 3) float32, column-major as GLSL reads a mat3: frame pixel (x, y, 1) ->
    texture coordinates of the visibility map (texel centres at (i + 0.5) / S)."""
    h, w = vis.mask.shape
    to_map = np.linalg.inv(np.vstack([vis.to_frame, [0.0, 0.0, 1.0]]))
    to_tex = np.array([[1 / w, 0, 0.5 / w], [0, 1 / h, 0.5 / h], [0, 0, 1]]) @ to_map
    return np.ascontiguousarray(to_tex.T, np.float32)


@dataclass
class _MeshLevel:
    """The index buffers of one mesh step: the whole mesh and the effect region's
    triangles, and the vertices each uses (only those are shaded)."""

    tris: moderngl.Buffer
    region_tris: moderngl.Buffer
    rows: np.ndarray
    region_rows: np.ndarray


class _FaceSlot:
    """GPU buffers for one face, reused every frame, and its small per-face textures
    (by uniform name)."""

    def __init__(self, ctx: moderngl.Context, n_vertices: int):
        self.ctx = ctx
        self.pos = ctx.buffer(reserve=n_vertices * 12)
        self.nrm = ctx.buffer(reserve=n_vertices * 12)
        self.normals = np.zeros((n_vertices, 3), np.float32)  # uploaded whole, filled where drawn
        self.vaos: dict[str, moderngl.VertexArray] = {}
        self.step = 1  # the mesh step it is drawn with this frame (Renderer.step_for)
        self.textures: dict[str, moderngl.Texture] = {}
        self.written: dict[str, np.ndarray | None] = {}  # the read-only array last written to each

    def texture(self, name: str, data: np.ndarray) -> moderngl.Texture:
        """``data`` (H, W, C) float32 in this face's texture ``name``, linearly filtered.
        A read-only array written last time is not written again (an effect's fixed
        per-face texture, e.g. the swap's live bands)."""
        h, w, c = data.shape
        tex = self.textures.get(name)
        if tex is not None and not data.flags.writeable and self.written.get(name) is data:
            return tex
        self.written[name] = None if data.flags.writeable else data
        if tex is None or tex.size != (w, h) or tex.components != c:
            if tex is not None:
                tex.release()
            tex = self.textures[name] = self.ctx.texture((w, h), c, dtype="f4")
            tex.filter = moderngl.LINEAR, moderngl.LINEAR
            tex.repeat_x = tex.repeat_y = False
        tex.write(np.ascontiguousarray(data, np.float32))
        return tex


class Renderer:
    """Renders frames with faces for one UV layout; create once on the GL thread.

    ``render(image, reconstructions, effect)`` draws the Effect it is given (or, for
    one-off callers, an effect name) and, when ``read`` is true,
    returns the result as (H, W, 3) uint8 BGR; ``output`` is the texture holding it
    (for the window, so showing a frame needs no read-back).

    ``whole_frame`` (default True): the whole frame goes into ``output`` each frame.
    Off, only the boxes under the faces drawn with surface effects are uploaded,
    cleared and read back, and ``read()`` puts them into a copy of the frame: the same
    pixels (the rest of the picture is the frame itself) for a fraction of the
    full-frame upload, depth clear and read-back, which on a software rasteriser cost
    more than the face (640x480: ~1.5 ms of a ~9 ms render; 1080p several times that).
    For callers that only read pixels (outputs, files); a window showing ``output``
    needs it on (realtime.render.stage sets it)."""

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
        software = any(s in ctx.info.get("GL_RENDERER", "").lower() for s in SOFTWARE_GL)
        if mesh_step is None:
            mesh_step = 2 if software else 1
        self.sync = GilFreeSync.for_context(ctx, software)  # see GilFreeSync: waits without the GIL
        self.mesh_step = mesh_step
        self.max_step = max(MAX_STEP, mesh_step) if software else mesh_step  # see step_for
        self.n_vertices = len(layout.face_ind)
        self.normals = MeshNormals(layout)
        self.uv_buf = ctx.buffer(np.ascontiguousarray(layout.vertex_uv, np.float32))
        region = effect_region(layout, REGION_TEX)
        self._region_texels = region[..., 0]
        self.levels: dict[int, _MeshLevel] = {}
        step = max(1, layout.resolution // WIRE_STEP)
        self.wire_buf = ctx.buffer(grid_lines(layout.face_mask, step))
        self.programs: dict[str, moderngl.Program] = {}  # "VERTEX|FRAGMENT" files -> mesh program
        self.size = (0, 0)
        self.level(mesh_step)
        self.program(DEPTH_ONLY)
        self.flat = load_program(ctx, "flat.vert", "flat.frag")
        self.overlay_buf = ctx.buffer(reserve=4096)
        self.overlay_vao = ctx.vertex_array(self.flat, [(self.overlay_buf, "3f", "in_pos")])
        self.region = ctx.texture((REGION_TEX, REGION_TEX), 2, np.ascontiguousarray(region), alignment=1)
        self.region.filter = moderngl.LINEAR, moderngl.LINEAR
        self.slots: list[_FaceSlot] = []
        self.textures: dict[int, tuple[weakref.ref, int, moderngl.Texture]] = {}
        self._by_name: dict[str, Effect] = {}  # see _effect
        self.size = (0, 0)
        self.frame_tex = self.color = self.depth = self.fbo = None
        self.whole_frame = True
        self._frame: np.ndarray | None = None
        self._boxes: list[tuple[int, int, int, int]] | None = None
        self.resize(width, height)
        self.overlay = GLOverlay(
            self.flat, self._overlay, lambda face: self._vao(self.slots[face], "wire").render(moderngl.LINES)
        )

    def program(self, fragment: str, vertex: str = "mesh.vert") -> moderngl.Program:
        """The mesh program with these shaders, compiled on first use."""
        key = f"{vertex}|{fragment}"
        if key not in self.programs:
            prog = load_program(self.ctx, vertex, fragment)
            self._size_uniforms(prog)
            self.programs[key] = prog
        return self.programs[key]

    def _size_uniforms(self, prog: moderngl.Program) -> None:
        width, height = self.size
        _set(prog, "u_size", (float(width), float(height)))
        _set(prog, "u_zscale", 1.0 / (8.0 * max(width, height, 1)))
        _set(prog, "u_tex_size", float(TEX))

    def level(self, step: int) -> _MeshLevel:
        """The index buffers of mesh step ``step``, made on first use. Masks and swaps
        draw only the triangles they can colour: the rest of the mesh (forehead, ears,
        neck) could otherwise hide the face where a rough reconstruction folds, and
        costs time for nothing."""
        if step not in self.levels:
            tris = mesh_triangles(self.layout, step)
            uv = np.round(self.layout.vertex_uv * (REGION_TEX - 1)).astype(np.int64)
            touches = self._region_texels[uv[:, 1], uv[:, 0]][tris].max(1) > 0
            self.levels[step] = _MeshLevel(
                self.ctx.buffer(tris),
                self.ctx.buffer(np.ascontiguousarray(tris[touches])),
                np.unique(tris),
                np.unique(tris[touches]),
            )
        return self.levels[step]

    def step_for(self, box: tuple[int, int, int, int] | None) -> int:
        """The mesh step for a face whose mesh covers ``box`` on screen: ``mesh_step``,
        or on a software rasteriser (which pays per triangle) a coarser one for a small
        face, so its triangles stay within TRIANGLE_PX pixels (see MAX_STEP)."""
        if box is None or self.max_step == self.mesh_step:
            return self.mesh_step
        texel_px = max(box[2] - box[0], box[3] - box[1]) / self.layout.resolution
        return min(max(int(TRIANGLE_PX // max(texel_px, 1e-6)), self.mesh_step), self.max_step)

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
        self.bgra = np.full((height, width, 4), 255, np.uint8)  # the frame as the colour texture takes it
        self.color = ctx.texture((width, height), 4)
        self.color.filter = moderngl.LINEAR, moderngl.LINEAR
        self.depth = ctx.depth_renderbuffer((width, height))
        self.fbo = ctx.framebuffer([self.color], self.depth)
        for prog in (*self.programs.values(), self.flat):
            self._size_uniforms(prog)

    def _effect(self, effect: Effect | str) -> Effect:
        """``effect``, or the effect of that name: built once per renderer and kept (its
        state, a mask's light per face, lasts from frame to frame), for callers that
        draw by name (evaluations, tools). A run's effects are its RenderStage's."""
        if isinstance(effect, Effect):
            return effect
        if effect not in self._by_name:
            self._by_name[effect] = get_effect(effect, self.layout)
        return self._by_name[effect]

    def _texture(self, effect: Effect) -> moderngl.Texture:
        """The effect's texture on the GPU, uploaded again only when it changed (or when
        another effect now has the id of one that is gone)."""
        held = self.textures.get(id(effect))
        if held is not None and held[0]() is effect and held[1] == effect.version:
            return held[2]
        img = np.ascontiguousarray(effect.texture, np.uint8)
        size = (img.shape[1], img.shape[0])
        if held is not None and held[2].size == size:
            tex = held[2]
            tex.write(img)
        else:
            if held is not None:
                held[2].release()
            tex = self.ctx.texture(size, 4, img, alignment=1)
        tex.build_mipmaps()
        tex.filter = moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR
        self.textures[id(effect)] = (weakref.ref(effect), effect.version, tex)
        return tex

    def _slot(self, i: int) -> _FaceSlot:
        while len(self.slots) <= i:
            self.slots.append(_FaceSlot(self.ctx, self.n_vertices))
        return self.slots[i]

    def _vao(self, slot: _FaceSlot, name: str) -> moderngl.VertexArray:
        """A face's vertex array: "wire", or VERTEX|FRAGMENT[:region] (a mesh program over
        the whole mesh, or only the triangles of the feathered effect region) at the
        slot's mesh step."""
        key = name if name == "wire" else f"{name}@{slot.step}"
        if key not in slot.vaos:
            if name == "wire":
                slot.vaos[name] = self.ctx.vertex_array(
                    self.flat, [(slot.pos, "3f", "in_pos")], index_buffer=self.wire_buf, index_element_size=4
                )
            else:
                shaders, _, part = name.partition(":")
                vertex, _, fragment = shaders.partition("|")
                prog = self.program(fragment, vertex)
                content = [
                    (b, f, a)
                    for b, f, a in (
                        (slot.pos, "3f", "in_pos"),
                        (self.uv_buf, "2f", "in_uv"),
                        (slot.nrm, "3f", "in_normal"),
                    )
                    if a in prog
                ]
                level = self.level(slot.step)
                tris = level.region_tris if part == "region" else level.tris
                slot.vaos[key] = self.ctx.vertex_array(prog, content, index_buffer=tris, index_element_size=4)
        return slot.vaos[key]

    # -- per frame -------------------------------------------------------------------
    @property
    def output(self) -> moderngl.Texture:
        """The rendered frame (BGRA, row 0 = top) for drawing in a window (whole only
        with ``whole_frame`` on)."""
        return self.color

    def render(
        self, image: np.ndarray, faces: list[Reconstruction], effect: Effect | str = "none", read: bool = True
    ) -> np.ndarray | None:
        """Draw ``image`` (H, W, 3) uint8 BGR with ``effect`` on ``faces``; return the
        result as BGR uint8 when ``read`` (else None: call ``read()`` later if needed).
        An effect may give different faces different effects (``Effect.per_face``: one
        swap source per person); each face is drawn with its own."""
        h, w = image.shape[:2]
        if self.sync is not None:  # the last frame's rasterising done, without the GIL
            self.sync.finish()
        self.resize(w, h)
        ctx = self.ctx
        eff = self._effect(effect)
        groups = eff.per_face(faces) if faces and eff.kind != "none" else []
        # Each face's mesh as its effect draws it, first: where the faces fall decides
        # which pixels of the frame need to go up, be cleared and come back.
        vertices = {i: e.vertices(faces[i]) for e, which in groups for i in which}
        surfaces = [i for e, which in groups if e.kind == "surface" for i in which]
        face_boxes = {i: self._box(vertices[i]) for i in surfaces}
        boxes = [b for b in face_boxes.values() if b is not None]
        whole = self.whole_frame or any(e.kind != "surface" for e, _ in groups)
        self.fbo.use()
        ctx.viewport = (0, 0, w, h)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND | moderngl.CULL_FACE)
        image = np.ascontiguousarray(image, np.uint8)
        if whole:
            cv2.cvtColor(image, cv2.COLOR_BGR2BGRA, dst=self.bgra)
            self.color.write(self.bgra)
        else:  # only under the faces: read() puts them into the frame
            for x0, y0, x1, y1 in boxes:
                part = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2BGRA)
                self.color.write(part, viewport=(x0, y0, x1 - x0, y1 - y0))
        self._frame, self._boxes = image, None if whole else boxes
        if boxes:  # depth matters only where faces are drawn; the colour was just written
            self.fbo.color_mask = (False, False, False, False)
            for x0, y0, x1, y1 in boxes:
                self.fbo.clear(depth=1.0, viewport=(x0, y0, x1 - x0, y1 - y0))
            self.fbo.color_mask = (True, True, True, True)
            self.fbo.use()
        readers = [i for e, which in groups if e.reads_frame for i in which]
        if readers and whole:
            self.frame_tex.write(image)
        elif readers:  # such a shader samples the frame under the live face only
            for b in (self._box(faces[i].vertices) for i in readers):
                if b is not None:
                    x0, y0, x1, y1 = b
                    self.frame_tex.write(
                        np.ascontiguousarray(image[y0:y1, x0:x1]), viewport=(x0, y0, x1 - x0, y1 - y0)
                    )
        inputs: dict[int, dict] = {}
        for e, which in groups:
            for i in which:  # slot i holds face i, whichever effect draws it
                slot = self._slot(i)
                slot.step = self.step_for(face_boxes.get(i))
                v = np.ascontiguousarray(vertices[i], np.float32)
                slot.pos.write(v)
                if e.normals:  # only the vertices its triangles use: the others are never shaded
                    level = self.level(slot.step)
                    rows = level.region_rows if e.kind == "surface" and not e.whole_face else level.rows
                    slot.normals[rows] = self.normals(v, rows)
                    slot.nrm.write(slot.normals)
                if e.kind == "surface":
                    inputs[i] = self._face_inputs(image, e, faces[i], slot)
            if e.kind == "surface" and e.texture is not None:
                self._texture(e)
        # Everything is uploaded before the first draw: on llvmpipe a texture written
        # while the frame's draws are queued (the scene holds every bound texture)
        # flushes them first, splitting the frame into two scenes.
        for e, which in groups:
            if e.kind == "surface":
                self._draw_surfaces(e, which, inputs)
            else:
                self._draw_overlays([faces[i] for i in which], e)
        if self.sync is not None:  # start rasterising now (llvmpipe waits for a flush)
            self.sync.flush()
        return self.read() if read else None

    def _face_inputs(self, image: np.ndarray, eff: Effect, rec: Reconstruction, slot: _FaceSlot) -> dict:
        """A face's uniforms for ``eff`` (its light, its visibility), with the small
        per-face textures uploaded to its slot (the values are then those textures)."""
        uniforms = eff.face_uniforms(image, rec)
        uniforms["u_occlusion"] = rec.visibility is not None
        if rec.visibility is not None:  # what covers the face stays in front
            uniforms["u_visible"] = rec.visibility.mask[..., None]
            uniforms["u_to_visible"] = visibility_matrix(rec.visibility)
        return {
            name: slot.texture(name, value) if isinstance(value, np.ndarray) and value.ndim == 3 else value
            for name, value in uniforms.items()
        }

    def _box(self, vertices: np.ndarray) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1), ends exclusive: the frame pixels a face's mesh can touch (its
        vertices' extent and a pixel's margin, clipped to the frame), None off-frame.
        Mesh vertices sit at pixel centres (x, y) (mesh.vert), so fragments fall inside."""
        w, h = self.size
        x, y = vertices[:, 0], vertices[:, 1]  # one column at a time: (N, 2).min(0) is 30x slower
        lo, hi = np.array([x.min(), y.min()]), np.array([x.max(), y.max()])
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            return 0, 0, w, h
        x0, y0 = max(int(np.floor(lo[0])) - 1, 0), max(int(np.floor(lo[1])) - 1, 0)
        x1, y1 = min(int(np.ceil(hi[0])) + 2, w), min(int(np.ceil(hi[1])) + 2, h)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    def _draw_surfaces(self, eff: Effect, which: list[int], inputs: dict[int, dict]) -> None:
        """Faces number ``which`` (their slots and ``inputs`` are ready) drawn with ``eff``."""
        ctx = self.ctx
        ctx.enable(moderngl.DEPTH_TEST)
        # Pass 1: depth only, so that pass 2 colours just the nearest surface.
        part = "" if eff.whole_face else ":region"
        ctx.depth_func = "<"
        self.fbo.color_mask = (False, False, False, False)
        self.fbo.use()  # moderngl applies a framebuffer's masks when it is bound
        for i in which:
            self._vao(self.slots[i], f"mesh.vert|{DEPTH_ONLY}{part}").render(moderngl.TRIANGLES)
        self.fbo.color_mask = (True, True, True, True)
        self.fbo.depth_mask = False
        self.fbo.use()
        ctx.depth_func = "<="
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        prog = self.program(eff.shader, eff.vertex_shader)
        self.region.use(1)
        _set(prog, "u_region", 1)
        if eff.reads_frame:
            self.frame_tex.use(2)  # the frame under the face, for shaders that blend with it
            _set(prog, "u_frame", 2)
        if eff.texture is not None:
            self._texture(eff).use(0)
            _set(prog, "u_tex", 0)
        _set(prog, "u_opacity", float(eff.opacity))
        for i in which:
            unit = FACE_UNITS
            for name, value in inputs[i].items():
                if isinstance(value, moderngl.Texture):
                    value.use(unit)
                    value, unit = unit, unit + 1
                _set(prog, name, value)
            self._vao(self.slots[i], f"{eff.vertex_shader}|{eff.shader}{part}").render(moderngl.TRIANGLES)
        self.fbo.depth_mask = True
        self.fbo.use()
        ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND)

    def _draw_overlays(self, faces: list[Reconstruction], eff: Effect) -> None:
        """Points, lines and bars drawn over everything by the effect."""
        ctx = self.ctx
        ctx.enable(moderngl.BLEND | moderngl.PROGRAM_POINT_SIZE)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        self.overlay.unit = max(self.size) / 640.0
        eff.draw_overlay(self.overlay, faces)
        ctx.disable(moderngl.BLEND | moderngl.PROGRAM_POINT_SIZE)

    def _overlay(self, points: np.ndarray, mode: int) -> None:
        data = np.ascontiguousarray(points, np.float32)
        if data.nbytes > self.overlay_buf.size:
            self.overlay_buf.orphan(data.nbytes)
        self.overlay_buf.write(data)
        self.overlay_vao.render(mode, vertices=len(points))

    def read(self) -> np.ndarray:
        """The last rendered frame as a new (H, W, 3) uint8 BGR array: read back whole,
        or (``whole_frame`` off) the frame with the faces' boxes read back into it."""
        w, h = self.size
        if self.sync is not None:
            self.sync.finish()
        if self._boxes is None or self._frame is None:
            out = np.empty((h, w, 3), np.uint8)
            self.fbo.read_into(out, components=3, alignment=1)
            return out
        out = self._frame.copy()
        for x0, y0, x1, y1 in self._boxes:
            part = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
            self.fbo.read_into(part, viewport=(x0, y0, x1 - x0, y1 - y0), components=3, alignment=1)
            out[y0:y1, x0:x1] = part
        return out

    def release(self) -> None:
        """Free GPU objects (the context itself belongs to whoever made it)."""
        objs = [tex for _, _, tex in self.textures.values()]
        for slot in self.slots:
            objs += [*slot.vaos.values(), *slot.textures.values(), slot.pos, slot.nrm]
        objs += [
            self.overlay_vao,
            self.uv_buf,
            *(b for level in self.levels.values() for b in (level.tris, level.region_tris)),
            self.wire_buf,
            self.overlay_buf,
            self.region,
            self.frame_tex,
            self.color,
            self.depth,
            self.fbo,
            *self.programs.values(),
            self.flat,
        ]
        for obj in objs:
            if obj is not None:
                obj.release()
        self.textures.clear()
        self.slots.clear()
        self.levels.clear()
        self.frame_tex = self.color = self.depth = self.fbo = None
        self.size = (0, 0)
