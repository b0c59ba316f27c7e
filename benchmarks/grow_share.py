"""How much of frog_fast's step a progressively grown GAN would save while it trains at 16x16.

Progressive growing (Karras et al. 2018) trains the generator and discriminator at a low
resolution first, then adds the layers of the next one. Its promise for a short run is
cheaper early steps. This measures that promise for ``recipes/frog_fast.yaml``'s models
(the DCGAN at base_filters 24, batch 32, float32): one GAN step (a discriminator update on
real and generated images, then a generator update, non-saturating loss, Adam; no
augmenter, no EMA) of

* ``32x32``: the recipe's generator and discriminator, as built by gankit;
* ``16x16``: what a grown GAN trains first: the same generator up to its 16x16 stage then a
  1x1 convolution to RGB (``to_rgb16``), and a discriminator that takes 16x16 images through
  a 1x1 convolution (``from_rgb16``, 24 channels) into the recipe's later layers (48 and 96
  channels, batch norm, LeakyReLU, the linear score).

The two take turns round by round in one process (so a busy moment hits both), and the
script prints the median seconds per step of each, their ratio, and each model's
multiply-adds per image by layer. Usage::

    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/grow_share.py          # about 2 minutes
    python benchmarks/grow_share.py --rounds 7 --steps 60
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

BATCH = 32
WIDTH = 24
LATENT = 128


def build():
    import keras
    from keras import layers

    from gankit_nets.dcgan import DCGANDiscriminator, DCGANGenerator

    keras.utils.set_random_seed(0)
    g32 = DCGANGenerator(latent_dim=LATENT, base_filters=WIDTH).build()
    d32 = DCGANDiscriminator(base_filters=WIDTH).build()
    h16 = g32.get_layer("up2_relu").output
    g16 = keras.Model(g32.input, layers.Conv2D(3, 1, activation="tanh", name="to_rgb16")(h16),
                      name="generator16")
    image = keras.Input((16, 16, 3), name="image16")
    x = layers.LeakyReLU(0.2)(layers.Conv2D(WIDTH, 1, name="from_rgb16")(image))
    filters = 2 * WIDTH
    for i in (2, 3):  # the recipe's down2 and down3, as the DCGAN discriminator builds them
        x = layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=False,
                          name=f"down{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"down{i}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"down{i}_lrelu")(x)
        filters *= 2
    d16 = keras.Model(image, layers.Dense(1, name="score")(layers.Flatten()(x)),
                      name="discriminator16")
    return {"32x32": (g32, d32), "16x16": (g16, d16)}


def step_fn(generator, discriminator):
    import keras
    import tensorflow as tf

    g_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    d_opt = keras.optimizers.Adam(4e-4, beta_1=0.5)
    size = discriminator.input_shape[1]

    @tf.function
    def step(real, z):
        with tf.GradientTape() as tape:
            fake = generator(z, training=True)
            real_logits = discriminator(real, training=True)
            fake_logits = discriminator(fake, training=True)
            d_loss = tf.reduce_mean(tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits))
        grads = tape.gradient(d_loss, discriminator.trainable_variables)
        d_opt.apply_gradients(zip(grads, discriminator.trainable_variables))
        with tf.GradientTape() as tape:
            fake_logits = discriminator(generator(z, training=True), training=True)
            g_loss = tf.reduce_mean(tf.nn.softplus(-fake_logits))
        grads = tape.gradient(g_loss, generator.trainable_variables)
        g_opt.apply_gradients(zip(grads, generator.trainable_variables))
        return d_loss + g_loss

    def run(n, real, z):
        if real.shape[1] != size:  # a grown GAN's real images at its resolution
            real = tf.image.resize(real, (size, size), method="area")
        start = time.perf_counter()
        for _ in range(n):
            step(real, z).numpy()
        return (time.perf_counter() - start) / n

    return run


def macs(model) -> dict[str, int]:
    """Multiply-adds per image of each convolution and dense layer."""
    out = {}
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "Conv2DTranspose", "Dense"):
            continue
        kernel = layer.kernel.shape
        shape = layer.output.shape
        if kind == "Dense":
            out[layer.name] = int(kernel[0] * kernel[1])
        elif kind == "Conv2D":
            out[layer.name] = int(shape[1] * shape[2] * kernel[0] * kernel[1] * kernel[2]
                                  * kernel[3])
        else:  # a stride-2 transposed convolution: each output sees a quarter of the kernel
            out[layer.name] = int(shape[1] * shape[2] * kernel[0] * kernel[1] * kernel[2]
                                  * kernel[3] // 4)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round")
    args = parser.parse_args(argv)
    import numpy as np
    import tensorflow as tf

    from gankit.util.machine import machine_info

    print("machine:", json.dumps(machine_info()))
    print("ONEDNN_MAX_CPU_ISA:", os.environ.get("ONEDNN_MAX_CPU_ISA", "(not set)"))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    models = build()
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (BATCH, 32, 32, 3)).astype("float32"))
    z = tf.constant(rng.standard_normal((BATCH, LATENT)).astype("float32"))
    runs = {name: step_fn(*pair) for name, pair in models.items()}
    for run in runs.values():
        run(5, real, z)  # trace and warm up
    times = {name: [] for name in runs}
    for r in range(args.rounds):
        for name, run in runs.items():
            times[name].append(run(args.steps, real, z))
        print(f"round {r + 1}: " + ", ".join(f"{n} {t[-1] * 1e3:.1f} ms/step"
                                             for n, t in times.items()))
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    full, grown = (statistics.median(times[n]) for n in ("32x32", "16x16"))
    print(f"median: 32x32 {full * 1e3:.1f} ms/step, 16x16 {grown * 1e3:.1f} ms/step; "
          f"16x16/32x32 = {grown / full:.3f} (a 16x16 step saves {1 - grown / full:.0%})")
    for name, (g, d) in models.items():
        for model in (g, d):
            counts = macs(model)
            total = sum(counts.values())
            print(f"{name} {model.name}: {total:,} multiply-adds per image: "
                  + ", ".join(f"{k} {v / total:.0%}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
