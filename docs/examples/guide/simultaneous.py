"""The guide's strategy."""

from gankit import StepOutputs, Strategy
from gankit.errors import RecipeError


class SimultaneousStrategy(Strategy):
    """Both models updated from the same forward pass (simultaneous gradient descent)."""

    name = "simultaneous"

    def check_recipe(self, recipe, path):
        if recipe.sections["regularizer"] or not recipe.create("augmenter").is_identity:
            raise RecipeError("this strategy applies no regularizers and no augmenter; "
                              "remove them, or use strategy: gan", path=path,
                              source=recipe.source)

    def train_step(self, batch, models, ctx):
        import tensorflow as tf

        real = batch.images[0]  # batches_per_step is 1
        labels = None if batch.labels is None else batch.labels[0]
        latents = ctx.normal("latents", (tf.shape(real)[0], models.latent_dim))
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = models.generate(latents, labels)
            fake_scores = models.discriminate(fake, labels)
            real_scores = models.discriminate(tf.cast(real, fake.dtype), labels)
            d_loss = models.loss.discriminator_loss(real_scores, fake_scores, ctx.child("loss/d"))
            # A relativistic loss (generator_uses_real) compares with the real scores too.
            g_loss = models.loss.generator_loss(
                fake_scores, ctx.child("loss/g"),
                **({"real_scores": real_scores} if models.loss.generator_uses_real else {}))
        models.updates["discriminator"].minimize(d_tape, d_loss)
        models.updates["generator"].minimize(g_tape, g_loss)
        return StepOutputs({"d_loss": d_loss, "g_loss": g_loss}, fake)
