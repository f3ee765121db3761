"""What is drawn on a face: one class per effect, one module per class.

An effect says how the renderer draws it, and the renderer never asks its name:

* ``kind = "surface"``: the face's dense mesh (``vertices``: the live one unless the
  effect moves it) drawn with the shaders ``vertex_shader`` and ``shader`` (files in
  shaders/), textured from ``texture`` (an RGBA image in the UV layout), with
  ``face_uniforms`` per face (values, arrays, or small per-face textures); ``normals``
  if the shaders need them, ``reads_frame`` if they sample the frame (``u_frame``),
  ``whole_face`` to draw beyond the feathered effect region.
  Lit effects (base.LitEffect) hand the shaders the live face's light.
* ``kind = "overlay"``: ``draw_overlay`` draws points, lines and bars over the frame.
* ``kind = "none"``: the frame as it is.

Adding an effect is adding a module here with an ``Effect`` subclass decorated by
``@register`` (both from realtime.render.effects.base):
the package imports every module in it, so the name is known to ``--effect``, the
window's keys and the control panel.
"""

from __future__ import annotations

import importlib
import pkgutil

from realtime.core.uv import UVLayout
from realtime.render.effects.base import REGISTRY, Effect, EffectError, register

__all__ = ["DEBUG_VIEWS", "EFFECTS", "MASKS", "Effect", "EffectError", "get_effect", "register"]


class NoEffect(Effect):
    """The frame as it is."""

    name = "none"
    kind = "none"
    order = 0


register(NoEffect)
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

_listed = sorted((c for c in REGISTRY.values() if c.listed), key=lambda c: (c.order, c.name))
#: The names users can pick (``mask:PATH`` and ``swap`` aside), in the keys' order.
EFFECTS = tuple(c.name for c in _listed if not c.takes_argument)
MASKS = tuple(c.name for c in _listed if c.group == "mask" and not c.takes_argument)
DEBUG_VIEWS = tuple(c.name for c in _listed if c.group == "debug")


def get_effect(name: str, layout: UVLayout) -> Effect:
    """The effect called ``name``: one of EFFECTS, or NAME:ARGUMENT (mask:PATH)."""
    base, sep, argument = name.partition(":")
    cls = REGISTRY.get(base)
    if cls is None or not cls.listed or bool(sep) != cls.takes_argument:
        raise EffectError(f"unknown effect {name!r}: use one of {', '.join(EFFECTS)}, or mask:PATH.png")
    effect = cls(layout, argument)
    effect.label = name
    return effect
