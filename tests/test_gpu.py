"""The GPU frame path: frames uploaded once, MTCNN, crops, engine and decode on the
GPU, equal to the CPU path. The CUDA tests skip without a GPU (CI has none); they ran
on a lent H100 (docs/benchmarks.md). The decode's torch path is checked on the CPU too."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime.bench.model import TF32, face_images
from realtime.live import engines as E
from realtime.live.decode import Decoder
from realtime.live.engines import backends as B

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


def test_device_auto_is_cuda_only_where_torch_sees_one():
    assert E.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert E.resolve_device("cpu") == "cpu"


def test_decode_in_torch_equals_the_numba_loop(bundle):
    """The decoder's GPU path (gather + affine in torch), run here on CPU tensors."""
    maps = B.EagerEngine(bundle).run(face_images(bundle.config.resolution, 2))
    to_frame = np.array([[[2.1, 0.2, 300.5], [-0.2, 2.1, 140.25]], [[0.7, 0.0, 12.0], [0.0, 0.7, 8.0]]])
    dec = Decoder(bundle.layout)
    ref = dec.vertices(maps.numpy(), to_frame)
    assert np.abs(dec.vertices_torch(maps, to_frame) - ref).max() < 1e-3


@cuda
@pytest.mark.parametrize("backend", ["cuda-graph-fp32", "cuda-graph-fp16"])
def test_cuda_graph_engines_match_eager(bundle, backend):
    images = face_images(bundle.config.resolution, 2)
    ref = B.EagerEngine(bundle).run(images).numpy()
    with TF32(False):
        engine = E.create_engine(bundle, backend, "cuda", warmup=(2,))
    maps = engine.run(images.cuda())
    assert maps.device.type == "cuda"  # left on the GPU for the decoder
    err = E.compare(ref, maps.cpu().numpy(), bundle)
    limit = E.LANDMARK_TOL if backend.endswith("fp32") else 3 * E.LANDMARK_TOL
    assert err["landmark_max_px"] <= limit, err


@cuda
def test_pascal_cards_get_cuda_graphs_in_fp32_with_one_line_why(bundle, monkeypatch):
    """Forced on this GPU: on a compute capability 6.1 card (GTX 1080) auto runs eager
    kernels in a CUDA graph in fp32 (Pascal GeForce has no fast fp16) and says why in one
    line; inductor's cuda-fp16, which needs Triton, refuses in one line."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (6, 1))
    engine = E.create_engine(bundle, "auto", "cuda", retime=True)
    assert engine.name == "cuda-graph-fp32", engine.reasons
    assert any("fp32: compute capability 6.1" in r and "Triton" in r for r in engine.reasons), engine.reasons
    with pytest.raises(E.EngineError, match="compute capability 7.0.*6.1"):
        E.create_engine(bundle, "cuda-fp16", "cuda")


@cuda
def test_gpu_crops_equal_cpu_crops(media):
    import cv2

    from realtime.live.crop import Octaves, crop_affines, to_tensor, warp

    image = cv2.resize(cv2.imread(str(media / "astronaut.png")), (1280, 720))
    _, to_frame = crop_affines(np.array([[640.0, 330.0], [500.3, 300.7]]), np.array([420.0, 97.5]), 128)
    cpu = warp(Octaves(to_tensor(image, "cpu")), to_frame, 128)
    gpu = warp(Octaves(to_tensor(image, "cuda")), to_frame, 128).cpu()
    assert (cpu - gpu).abs().max() <= 1e-3


@cuda
def test_gpu_stages_equal_cpu_stages_on_the_same_faces(bundle, media):
    """Crop, engine and decode on the GPU, fed the same face boxes as the CPU path: the
    crops within 1e-3, the landmarks within 0.05 px (fp32, TF32 off)."""
    import cv2

    from realtime.live.crop import Octaves, crop_faces, to_tensor

    image = cv2.resize(cv2.imread(str(media / "obama_portrait.jpg")), (1280, 720))
    centers, sizes = np.array([[640.0, 300.0], [300.5, 200.25]]), np.array([430.0, 180.0])
    dec = Decoder(bundle.layout)
    out = {}
    with TF32(False):
        for d in ("cpu", "cuda"):
            batch = crop_faces(Octaves(to_tensor(image, d)), centers, sizes, 128, [1, 2])
            maps = B.EagerEngine(bundle, d).run(batch.images)
            out[d] = (batch.images.cpu(), dec.decode(maps, batch.to_frame, batch.track_ids))
    assert (out["cpu"][0] - out["cuda"][0]).abs().max() <= 1e-3
    for a, b in zip(out["cpu"][1], out["cuda"][1], strict=True):
        assert np.abs(a.landmarks - b.landmarks).max() < 0.05


@cuda
def test_face_processor_on_the_gpu_follows_the_cpu(bundle, carphone):
    """The whole processor, detection and tracking included: the same face every frame.
    MTCNN's boxes differ by rounding on the GPU, the tracker frames the next crop on the
    landmarks, so small differences carry on (0.76 px at most on the H100 over these
    frames, the face about 80 px wide)."""
    from realtime.core.types import Frame
    from realtime.live.capture import VideoSource
    from realtime.live.faces import FaceProcessor

    with VideoSource(carphone) as src:
        frames = src.read_all()[:15]
    procs = {d: FaceProcessor.from_bundle(bundle, "eager", d, filter_factory=None) for d in ("cpu", "cuda")}
    errors = []
    for i, image in enumerate(frames):
        res = {d: p.process(Frame(image, i, i / 30)) for d, p in procs.items()}
        assert len(res["cuda"].reconstructions) == len(res["cpu"].reconstructions) == 1
        a, b = (res[d].reconstructions[0].landmarks[:, :2] for d in ("cpu", "cuda"))
        errors.append(np.abs(a - b).max())
    assert max(errors) < 2.0, errors
