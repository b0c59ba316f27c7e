"""Every metric as a TensorBoard scalar."""

from __future__ import annotations

from gankit.training.callbacks.core import CoreCallback


class TensorBoard(CoreCallback):
    """Every metric as a TensorBoard scalar, every ``sample_every`` steps and at the end."""

    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        import tensorflow as tf

        if step % self.run.train.sample_every == 0 or self.run.is_final(step):
            with self.run.writer.as_default():
                for name, value in logs.items():
                    tf.summary.scalar(name, value, step=step)
