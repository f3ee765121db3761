"""The original PRNet TF1 graph (predictor.py's resfcn256, tf_slim layers, original
scopes) with random weights: writes a checkpoint laid out as a PRNet checkout and the
maps TF computes, for tests/test_tf_import.py.

Run as its own process (``python tests/tf_reference.py OUT_DIR``): TensorFlow and
torch in one process can crash each other, and the test must not depend on that.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

CHECKPOINT = "Data/net-data/256_256_resfcn256_weight"

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


def main(out: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.uniform(0.0, 1.0, (4, 256, 256, 3)).astype(np.float32)
    np.save(out / "images.npy", images)
    np.save(out / "expected.npy", _tf_checkpoint(out / CHECKPOINT, images))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
