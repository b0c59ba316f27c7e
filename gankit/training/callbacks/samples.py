"""The sample pair: one generated and one real image."""

from __future__ import annotations

from gankit.training.callbacks.core import CoreCallback
from gankit.util.images import save_png, to_uint8


class Samples(CoreCallback):
    """One generated and one real image every ``sample_every`` steps (the article's pair):
    ``samples/generated_<step>.png`` and ``samples/real_<step>.png``."""

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        run = self.run
        if step % run.train.sample_every and not run.is_final(step):
            return
        # The generator's output is read in the data's value range, since that is what the
        # discriminator compares it with.
        fake, real = run.last_fake.numpy(), run.last_real.numpy()
        save_png(to_uint8(fake, run.value_range), run.run_dir.samples / f"generated_{step:06d}.png")
        save_png(to_uint8(real, run.value_range), run.run_dir.samples / f"real_{step:06d}.png")
