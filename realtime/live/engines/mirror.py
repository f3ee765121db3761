"""Mirror averaging, an option of every engine (``Engine.mirror``): each face run as
seen and mirrored, the two maps averaged."""

from __future__ import annotations

import numpy as np
import torch

from realtime.core.uv import MIRROR_68, UVLayout


class MirrorAverage:
    """Turns the maps of a batch and of its mirror image into their average.

    The network's errors on a face and on its mirror image are largely independent, so
    their mean is markedly closer to the truth and steadier (figures in the model card),
    for twice the compute in one batched call. PRNet's UV layout is mirror-symmetric
    (column c <-> R - 1 - c), so the mirror's map flipped left-right, x reflected, is a
    map of the face as seen; the 68 landmark pixels take their partner landmark's value
    exactly (``MIRROR_68``), and the few face pixels whose mirror pixel is off the face
    keep the direct prediction. ``resolution``: the crop side, whose x is reflected."""

    def __init__(self, layout: UVLayout, resolution: int):
        self.resolution = resolution
        lonely = layout.face_mask & ~layout.face_mask[:, ::-1]
        self._host = (layout.kpt_ind, layout.kpt_ind[:, MIRROR_68], lonely)
        self._on: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    def _indices(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Landmark pixels, their partners and the lonely pixels, on ``device`` (copied once)."""
        if device not in self._on:
            self._on[device] = tuple(
                torch.as_tensor(np.ascontiguousarray(a), device=device) for a in self._host
            )
        return self._on[device]

    def average(self, maps: torch.Tensor, b: int) -> torch.Tensor:
        """``maps``: (2B, 3, R, R), the B faces then their mirror images -> (B, 3, R, R),
        on the device the maps are on (the GPU's)."""
        own, seen = maps[:b], maps[b:]
        kpt, partner, lonely = self._indices(maps.device)
        back = seen.flip(-1)
        back[:, :, kpt[1], kpt[0]] = seen[:, :, partner[1], partner[0]]
        back[:, 0] = (self.resolution - 1) - back[:, 0]
        back[:, :, lonely] = own[:, :, lonely]
        back += own
        back *= 0.5  # in place: the flipped copy is the one map this call allocates
        return back
