"""Mirror averaging: any engine run on each face as seen and mirrored."""

from __future__ import annotations

import numpy as np
import torch

from realtime.uv import MIRROR_68, UVLayout


class MirrorAveraged:
    """Any engine, run on each face as seen and mirrored, the two maps averaged.

    The network's errors on a face and on its mirror image are largely independent, so
    their mean is markedly closer to the truth and steadier (figures in the model card),
    for twice the compute in one batched call. PRNet's UV
    layout is mirror-symmetric (column c <-> R - 1 - c), so the mirror's map flipped
    left-right, x reflected, is a map of the face as seen; the 68 landmark pixels take
    their partner landmark's value exactly (``MIRROR_68``), and the few face pixels
    whose mirror pixel is off the face keep the direct prediction."""

    def __init__(self, engine, layout: UVLayout):
        self.inner = engine
        self.name = f"{engine.name}+mirror"
        self.resolution = engine.resolution
        mirrored = "mirror: each face also runs mirrored, the two maps averaged"
        self.reasons = [*getattr(engine, "reasons", []), mirrored]
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

    def run(self, images: torch.Tensor) -> torch.Tensor:
        """The averaged maps, on the device the inner engine leaves them (the GPU's)."""
        b = images.shape[0]
        maps = self.inner.run(torch.cat([images, images.flip(-1)]))
        own, seen = maps[:b], maps[b:]
        kpt, partner, lonely = self._indices(maps.device)
        back = seen.flip(-1)
        back[:, :, kpt[1], kpt[0]] = seen[:, :, partner[1], partner[0]]
        back[:, 0] = (self.resolution - 1) - back[:, 0]
        back[:, :, lonely] = own[:, :, lonely]
        back += own
        back *= 0.5  # in place: the flipped copy is the one map this call allocates
        return back

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        return self.run(images).cpu().numpy()
