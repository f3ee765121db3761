"""Official-weights import: the name mapping covers the released checkpoint, and an
original TF1 resfcn256 graph with random weights gives the same maps as our PRNet
after import (max abs difference <= 1e-4)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.tf_import import CHECKPOINT, UV_DATA, import_prnet, is_optimizer_variable, name_map, read_index
from realtime.weights import BundleError, load_bundle

PRNET_UV = Path(__file__).parents[1].parent / "shared" / "data" / "prnet-uv"
REAL_INDEX = PRNET_UV / "256_256_resfcn256_weight.index"
UV_FILES = (
    "face_ind.txt",
    "uv_kpt_ind.txt",
    "uv_face_mask.png",
    "uv_weight_mask.png",
    "canonical_vertices.npy",
)
HAVE_TF = all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "tf_slim"))


def test_mapping_covers_released_checkpoint():
    names = read_index(REAL_INDEX)
    weights = {n for n in names if not is_optimizer_variable(n)}
    assert len(weights) == 245 and len(names) == 545  # the rest is Adam state
    assert set(name_map().values()) == weights
    assert names["resfcn256/Conv2d_transpose_16/BatchNorm/gamma"].shape == (3,)
    assert names["resfcn256/resBlock_2/shortcut/weights"].shape == (1, 1, 32, 64)


def test_incomplete_checkout_is_one_clear_line(tmp_path):
    with pytest.raises(BundleError, match="not a complete PRNet checkout: missing Data/net-data"):
        import_prnet(tmp_path, tmp_path / "out.pt")
    cmd = [
        sys.executable,
        "-m",
        "realtime.weights",
        "import-prnet",
        str(tmp_path),
        "-o",
        str(tmp_path / "o.pt"),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert run.returncode == 2
    assert run.stderr.startswith("error:") and "not a complete PRNet checkout" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


ENCODER = ((2, 2), (2, 1), (4, 2), (4, 1), (8, 2), (8, 1), (16, 2), (16, 1), (32, 2), (32, 1))
DECODER = ((32, 1), (16, 2), (16, 1), (16, 1), (8, 2), (8, 1), (8, 1), (4, 2), (4, 1), (4, 1), (2, 2), (2, 1),
           (1, 2), (1, 1))  # fmt: skip


def _resfcn256(x, is_training, size: int = 16):
    """PRNet's predictor.py network with its scopes and tf_slim layers (channel multiples
    and strides as in predictor.py, written as loops)."""
    import tensorflow.compat.v1 as tf
    import tf_slim as slim
    from tensorflow.python.framework import ops

    if not hasattr(ops, "Tensor"):  # tf_slim 1.1 still names this alias, gone in TF 2.21
        ops.Tensor = tf.Tensor

    def res_block(x, num_outputs, stride):
        with tf.variable_scope(None, "resBlock"):
            shortcut = x
            if stride != 1 or x.get_shape()[3] != num_outputs:
                shortcut = slim.conv2d(
                    shortcut,
                    num_outputs,
                    1,
                    stride=stride,
                    activation_fn=None,
                    normalizer_fn=None,
                    scope="shortcut",
                )
            x = slim.conv2d(x, num_outputs // 2, kernel_size=1, stride=1)
            x = slim.conv2d(x, num_outputs // 2, kernel_size=4, stride=stride)
            x = slim.conv2d(x, num_outputs, kernel_size=1, stride=1, activation_fn=None, normalizer_fn=None)
            x += shortcut
            return tf.nn.relu(slim.batch_norm(x))

    # tf_slim's default batch norm goes through tf_keras' legacy layers, which current
    # TF no longer finds; updates_collections=None selects slim's own fused TF1 batch
    # norm instead (same variables, same epsilon; it only changes training updates).
    bn_args = dict(is_training=is_training, scale=True, updates_collections=None)
    conv_args = dict(
        activation_fn=tf.nn.relu, normalizer_fn=slim.batch_norm, biases_initializer=None, padding="SAME"
    )
    with (
        tf.variable_scope("resfcn256"),
        slim.arg_scope([slim.batch_norm], **bn_args),
        slim.arg_scope([slim.conv2d, slim.conv2d_transpose], **conv_args),
    ):
        se = slim.conv2d(x, size, kernel_size=4, stride=1)
        for mult, stride in ENCODER:
            se = res_block(se, size * mult, stride)
        pd = se
        for mult, stride in DECODER:
            pd = slim.conv2d_transpose(pd, size * mult, 4, stride=stride)
        pd = slim.conv2d_transpose(pd, 3, 4, stride=1)
        pd = slim.conv2d_transpose(pd, 3, 4, stride=1)
        return slim.conv2d_transpose(pd, 3, 4, stride=1, activation_fn=tf.nn.sigmoid)


def _tf_checkpoint(prefix: Path, images: np.ndarray) -> np.ndarray:
    """Random weights, saved with Adam slots like the release; returns the original
    inference graph's maps for ``images`` (B, R, R, 3), restored as predictor.py does.

    Gamma and beta are random; the moving statistics come from one training-mode pass
    (decay 0), so they are non-trivial and keep activations well scaled through 27
    layers. With random statistics the maps barely depend on the input, and a one-pixel
    padding error hides under the tolerance."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow.compat.v1 as tf
    import tf_slim as slim

    bn_init = {
        "gamma": tf.random_uniform_initializer(0.5, 1.5),
        "beta": tf.random_normal_initializer(0.0, 0.3),
    }
    with tf.Graph().as_default(), tf.Session() as sess:
        tf.set_random_seed(0)
        x = tf.placeholder(tf.float32, [None, *images.shape[1:]])
        with slim.arg_scope([slim.batch_norm], param_initializers=bn_init, decay=0.0):
            pos = _resfcn256(x, is_training=True)
        tf.train.AdamOptimizer().minimize(tf.reduce_mean(pos))
        sess.run(tf.global_variables_initializer())
        sess.run(pos, {x: images[::-1] * 0.8 + 0.1})  # sets the moving statistics
        for v in tf.global_variables(".*moving_variance"):  # no near-zero ones: they amplify round-off
            sess.run(v.assign(v + 0.2 * tf.reduce_mean(v)))
        prefix.parent.mkdir(parents=True)
        tf.train.Saver().save(sess, str(prefix), write_meta_graph=False, write_state=False)
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.placeholder(tf.float32, [None, *images.shape[1:]])
        pos = _resfcn256(x, is_training=False)
        tf.train.Saver(tf.global_variables()).restore(sess, str(prefix))
        return sess.run(pos, {x: images})


@pytest.mark.skipif(not HAVE_TF, reason="needs TensorFlow: pip install tensorflow-cpu tf-slim")
def test_import_matches_original_tf_graph(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.uniform(0.0, 1.0, (4, 256, 256, 3)).astype(np.float32)
    expected = _tf_checkpoint(tmp_path / CHECKPOINT, images)
    (tmp_path / UV_DATA).mkdir(parents=True)
    for name in UV_FILES:
        shutil.copy(PRNET_UV / name, tmp_path / UV_DATA / name)

    out = import_prnet(tmp_path, tmp_path / "official.pt")
    bundle = load_bundle(out)
    with torch.no_grad():
        ours = bundle.build_model()(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()

    expected = expected.transpose(0, 3, 1, 2)
    # Sanity of the test itself: maps spread over the sigmoid and depend on the input.
    assert expected.std() > 0.08 and ((expected > 0.02) & (expected < 0.98)).mean() > 0.8
    assert np.abs(expected[0] - expected[1]).mean() > 0.01
    assert np.abs(ours - expected).max() <= 1e-4
    assert bundle.config.size == 16 and bundle.config.resolution == 256
    assert bundle.layout.face_mask.sum() == len(bundle.layout.canonical) == 43867
    assert bundle.layout.weight_mask.max() == pytest.approx(16.0)
    assert bundle.provenance["ignored_non_optimizer_variables"] == []
