"""tf.data input pipelines: shuffled, augmented train batches; plain val/test batches."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from frlib.config import Config
from frlib.data import FaceDataset
from frlib.labels import TASKS


def _batch_reader(dataset: FaceDataset):
    """Gather one batch of crops and labels in numpy: one Python call per batch, not per image."""
    crops, labels = dataset.crops, dataset.labels

    def read(indices: np.ndarray):
        order = np.sort(indices)  # sequential reads from an on-disk cache
        return (np.asarray(crops[order]), *(labels[t][order] for t in TASKS))

    return read


ROTATE_BATCH_PROB = 0.3  # rotation is the costly op on a CPU: applied to ~30% of batches


def augment(images: tf.Tensor, seed: tf.Tensor, grayscale_prob: float = 0.2) -> tf.Tensor:
    """Random flip, zoom/shift, small rotation, brightness/contrast and greyscale on a float batch.

    `seed` is an int64 scalar drawn per batch from the run's seed: stateless and reproducible.
    Flip, zoom and shift are one crop_and_resize (several times faster on a CPU than a
    projective transform), so the pipeline keeps ahead of training on 2 cores.
    """
    batch = tf.shape(images)[0]

    def uniform(shape, k, low=0.0, high=1.0):
        return tf.random.stateless_uniform(shape, tf.stack([seed, k]), low, high)

    side = 1.0 / uniform([batch], 0, 1.0, 1.15)  # zoom in by up to 15%
    cy = 0.5 + uniform([batch], 1, -1.0, 1.0) * (1.0 - side) / 2  # shift within the image
    cx = 0.5 + uniform([batch], 2, -1.0, 1.0) * (1.0 - side) / 2
    flip = tf.where(uniform([batch], 3) < 0.5, -1.0, 1.0)  # x1 < x0 mirrors the crop
    boxes = tf.stack([cy - side / 2, cx - flip * side / 2, cy + side / 2, cx + flip * side / 2], 1)
    images = tf.image.crop_and_resize(images, boxes, tf.range(batch), tf.shape(images)[1:3])
    rotate = uniform([], 4) < ROTATE_BATCH_PROB
    angle = uniform([batch], 5, -0.2, 0.2)  # radians, about +-11 degrees
    images = tf.cond(rotate, lambda: _rotate(images, angle), lambda: images)
    brightness = uniform([batch, 1, 1, 1], 6, -25.0, 25.0)
    contrast = uniform([batch, 1, 1, 1], 7, 0.75, 1.25)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    images = (images - mean) * contrast + mean + brightness
    grey = uniform([batch, 1, 1, 1], 8) < grayscale_prob
    images = tf.where(grey, tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(images)), images)
    return tf.clip_by_value(images, 0.0, 255.0)


def _rotate(images: tf.Tensor, angle: tf.Tensor) -> tf.Tensor:
    """Rotate each image about its centre (reflecting at the borders)."""
    size = tf.cast(tf.shape(images)[1:3], tf.float32)
    cy, cx = size[0] / 2.0, size[1] / 2.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output pixel (x, y) samples the input at R @ (x - c) + c.
    tx = cx - cos * cx + sin * cy
    ty = cy - sin * cx - cos * cy
    zeros = tf.zeros_like(angle)
    transforms = tf.stack([cos, -sin, tx, sin, cos, ty, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def make_dataset(
    dataset: FaceDataset,
    split: str,
    config: Config,
    *,
    training: bool | None = None,
    batch_size: int | None = None,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Batches of (float32 images 0..255, {task: class id, -1 when missing}) for one split.

    Augmentation runs after the split and only when `training` (default: split == "train").
    """
    training = split == "train" if training is None else training
    indices = dataset.split[split]
    batch_size = batch_size or config.batch_size
    read = _batch_reader(dataset)
    size = config.image_size
    ds = tf.data.Dataset.from_tensor_slices(indices)
    if training:
        ds = ds.shuffle(len(indices), seed=config.seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=False)

    def load(idx):
        out = tf.numpy_function(read, [idx], [tf.uint8] + [tf.int32] * len(TASKS), stateful=False)
        images = tf.ensure_shape(out[0], [None, size, size, 3])
        images = tf.cast(images, tf.float32)
        labels = {t: tf.ensure_shape(v, [None]) for t, v in zip(TASKS, out[1:], strict=True)}
        return images, labels

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    return finish(ds, config, training)


def finish(ds: tf.data.Dataset, config: Config, training: bool) -> tf.data.Dataset:
    """Augment (train only, one seed per batch drawn from the run's seed), then prefetch."""
    if training and config.augment:
        seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda batch, seed: (augment(batch[0], seed, config.grayscale_prob), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)
