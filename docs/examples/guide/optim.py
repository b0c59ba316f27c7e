"""The guide's optimizer and schedule."""

from gankit import REQUIRED, Optimizer, Param, Schedule


class Adafactor(Optimizer):
    """Adafactor (keras.optimizers.Adafactor)."""

    name = "Adafactor"
    params = {"learning_rate": Param(float, 1e-3, min=0.0, min_exclusive=True,
                                     component="schedule",
                                     doc="a fixed rate, or a schedule ({type: NAME, ...})")}

    def create(self):
        import keras

        from gankit import create

        rate = self.config["learning_rate"]
        if isinstance(rate, dict):  # a schedule, kept as its recipe section
            rate = create("schedule", rate).create()
        return keras.optimizers.Adafactor(learning_rate=rate)


class LinearWarmup(Schedule):
    """A rate rising linearly from rate / warmup_steps at step 0 to rate, then constant."""

    name = "LinearWarmup"
    params = {"rate": Param(float, REQUIRED, min=0.0, min_exclusive=True, doc="the final rate"),
              "warmup_steps": Param(int, 1000, min=1, doc="steps of the rise")}

    def create(self):
        import keras

        rate, steps = self.config["rate"], self.config["warmup_steps"]
        # A polynomial "decay" of power 1 upwards, from rate / steps to rate, is a linear rise.
        return keras.optimizers.schedules.PolynomialDecay(rate / steps, steps,
                                                          end_learning_rate=rate, power=1.0)
