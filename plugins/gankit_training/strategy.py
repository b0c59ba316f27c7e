"""The ``gan`` strategy: alternating discriminator and generator updates from the recipe's
parts (loss, regularizers, augmenter), with the core applying every gradient."""

from __future__ import annotations

from gankit import Param
from gankit.errors import RecipeError
from gankit.interfaces import Batch, GANModels, RegularizerInputs, StepOutputs, Strategy


class GANStrategy(Strategy):
    """Alternating updates: d_steps discriminator updates on their own real batches, then a generator update.

    Discriminator update ``i``: the generator makes a batch from fresh latents; generated
    and real images go through the augmenter and the discriminator together (generated
    first, in one call, as the frog article concatenates them; a discriminator with batch
    norm scores them in two calls, generated then real, so that its statistics are those of
    a batch of one kind as in the generator's update); the loss and every
    regularizer give the discriminator's objective. Generator update: fresh latents,
    augmented the same way, scored by the unchanged discriminator; only the generator's
    weights are updated. With ``bce`` labels fake=1/real=0, label noise 0.05 and RMSprop,
    this is exactly the article's ``train_on_batch`` loop (tests/components/test_fidelity.py).

    Random streams (see ``gankit.interfaces.context``): ``d_latents/i``, ``g_latents``,
    ``loss/d<i>``, ``loss/g``, ``augmenter/d<i>``, ``augmenter/g`` and
    ``regularizers/<name>/d<i>``, so adding a part changes nothing another part draws.
    """

    name = "gan"
    params = {
        "d_steps": Param(int, 1, min=1, max=100,
                         doc="discriminator updates per generator update, each on its own "
                             "real batch (5 for WGAN-GP)"),
    }
    removed_params = {
        "label_noise": "label noise belongs to the loss now: loss: {type: bce, label_noise: ...}",
        "d_learning_rate": "set optimizers.discriminator.learning_rate",
        "g_learning_rate": "set optimizers.generator.learning_rate",
    }

    @property
    def batches_per_step(self) -> int:
        return self.config["d_steps"]

    def check_recipe(self, recipe, path: str) -> None:
        # Each discriminator update takes its own batch, so one step needs d_steps batches.
        need = self.config["d_steps"] * recipe.train.batch_size
        if need > 1_000_000:
            raise RecipeError(f"d_steps x train.batch_size = {need} images per step is more "
                              f"than gankit holds in one step (1,000,000)",
                              path=f"{path}.d_steps", source=recipe.source)

    def setup(self, models: GANModels) -> None:
        counts: dict[str, int] = {}
        self._reg_names = []
        for reg in models.regularizers:
            counts[reg.name] = counts.get(reg.name, 0) + 1
            self._reg_names.append(reg.name if counts[reg.name] == 1
                                   else f"{reg.name}_{counts[reg.name]}")

    def train_step(self, batch: Batch, models: GANModels, ctx) -> StepOutputs:
        import tensorflow as tf

        d_steps = self.config["d_steps"]
        n = batch.images.shape[1] or tf.shape(batch.images)[1]
        names = getattr(self, "_reg_names", None) or [r.name for r in models.regularizers]
        sums: dict[str, list] = {}

        def record(name, value):
            sums.setdefault(name, []).append(value)

        for i in range(d_steps):
            real = batch.images[i]
            labels = None if batch.labels is None else batch.labels[i]
            latents = ctx.normal(f"d_latents/{i}", (n, models.latent_dim))
            # Images are float32 under every precision (the augmenter and the regularizers
            # take them so); the discriminator casts them to the dtype it computes in.
            fake = tf.cast(models.generate(latents, labels, training=True), tf.float32)
            images = tf.concat([fake, tf.cast(real, tf.float32)], axis=0)
            both = None if labels is None else tf.concat([labels, labels], axis=0)
            with tf.GradientTape() as tape:
                if not models.augmenter.is_identity:
                    images = models.augmenter.augment(images, ctx.child(f"augmenter/d{i}"))
                if models.discriminator_mixes_batch:
                    # Batch norm: a batch of generated images alone and one of real images
                    # alone, as in the generator's update (a mixed batch would normalize
                    # differently there, and the generator would learn nothing from it).
                    fake_scores = models.discriminate(images[:n], labels, training=True)
                    real_scores = models.discriminate(images[n:], labels, training=True)
                else:
                    scores = models.discriminate(images, both, training=True)
                    fake_scores, real_scores = scores[:n], scores[n:]
                d_loss = models.loss.discriminator_loss(real_scores, fake_scores,
                                                        ctx.child(f"loss/d{i}"))
                total = d_loss
                if models.regularizers:
                    inputs = RegularizerInputs(
                        discriminate=lambda x, y=labels: models.discriminate(x, y, training=True),
                        real_images=images[n:], fake_images=images[:n],
                        real_scores=real_scores, fake_scores=fake_scores)
                    for name, reg in zip(names, models.regularizers):
                        term = reg.term(inputs, ctx.child(f"regularizers/{name}/d{i}"))
                        record(f"d_{name}", term)
                        total += term
            record("d_grad_norm", models.updates["discriminator"].minimize(tape, total))
            record("d_loss", d_loss)
            record("d_on_fake", tf.reduce_mean(fake_scores))
            record("d_on_real", tf.reduce_mean(real_scores))

        latents = ctx.normal("g_latents", (n, models.latent_dim))
        labels = (None if batch.labels is None or not models.num_classes
                  else ctx.integers("g_labels", (n,), models.num_classes))
        with tf.GradientTape() as tape:
            generated = tf.cast(models.generate(latents, labels, training=True), tf.float32)
            images = generated
            if models.loss.generator_uses_real:  # a relativistic loss: score a real batch too
                real = tf.cast(batch.images[-1], generated.dtype)
                real_labels = None if batch.labels is None else batch.labels[-1]
                images = tf.concat([generated, real], axis=0)
                labels = None if labels is None else tf.concat([labels, real_labels], axis=0)
            if not models.augmenter.is_identity:
                images = models.augmenter.augment(images, ctx.child("augmenter/g"))
            if models.discriminator_mixes_batch and models.loss.generator_uses_real:
                scores = tf.concat([models.discriminate(images[:n], _part(labels, 0, n),
                                                        training=True),
                                    models.discriminate(images[n:], _part(labels, n, None),
                                                        training=True)], axis=0)
            else:
                scores = models.discriminate(images, labels, training=True)
            if models.loss.generator_uses_real:
                g_loss = models.loss.generator_loss(scores[:n], ctx.child("loss/g"),
                                                    real_scores=scores[n:])
            else:
                g_loss = models.loss.generator_loss(scores, ctx.child("loss/g"))
        g_grad_norm = models.updates["generator"].minimize(tape, g_loss)

        metrics = {"d_loss": None, "g_loss": g_loss}
        for name, values in sums.items():
            metrics[name] = values[0] if len(values) == 1 else tf.add_n(values) / len(values)
        metrics["g_grad_norm"] = g_grad_norm
        return StepOutputs(metrics, fake)


def _part(labels, start, stop):
    return None if labels is None else labels[start:stop]
