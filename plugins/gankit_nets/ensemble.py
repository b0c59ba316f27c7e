"""Several discriminators judging the same image, their logits summed (Vision-aided GAN).

Kumari, Zhang, Shechtman and Zhu, "Ensembling Off-the-shelf Models for GAN Training" (CVPR
2022): a discriminator on the frozen features of a pretrained network, trained beside the
ordinary one, gives the generator what the small data cannot teach a discriminator from
scratch, while the ordinary one keeps judging the pixels. gankit's ``ensemble`` makes any
discriminators one: ``{type: ensemble, members: [{type: dcgan, ...}, {type: projected,
...}]}``.
"""

from __future__ import annotations

from gankit import Discriminator, Param, create
from gankit.errors import RecipeError
from gankit.params import REQUIRED
from gankit_nets.layers import label_input


class EnsembleDiscriminator(Discriminator):
    """The weighted sum of the logits of its ``members``: ``score = sum_i w_i * D_i(image)``.

    Every member is a discriminator component of its own (any registered type, configured
    as in a recipe's ``discriminator`` section) whose score is a logit
    (``output_activation: linear``), and all take the same image shape and classes; a
    class-conditional ensemble passes ``[image, label]`` to each member. The members are
    nested models named ``member0``, ``member1``, ..., built in order; a member's frozen
    parts stay frozen (a ``projected`` member's backbone).

    The sum is taken in float32. With one loss on the sum, each member gets the gradient of
    the whole ensemble's loss: the generator gets ``sum_i w_i * dD_i/dx``. ``weights``
    (default all 1) scale the members' say.
    """

    name = "ensemble"
    output_activation = "linear"
    params = {
        "members": Param(list, REQUIRED, component="discriminator",
                         doc="the discriminators whose logits are summed, each NAME or "
                             "{type: NAME, ...} as a discriminator section"),
        "weights": Param(list, [], item_type=float, min=0.0, min_exclusive=True, max=1e6,
                         doc="one weight per member ([] for all 1): score = sum of "
                             "weight * member's logit"),
    }

    def __init__(self, **config):
        super().__init__(**config)
        c = self.config
        if not c["members"]:
            raise RecipeError("name at least one member discriminator", path="members")
        if c["weights"] and len(c["weights"]) != len(c["members"]):
            raise RecipeError(f"expected one weight per member ({len(c['members'])}), got "
                              f"{len(c['weights'])}", path="weights")
        self.members = [create("discriminator", m, f"discriminator.members[{i}]")
                        for i, m in enumerate(c["members"])]
        first = self.members[0]
        for i, member in enumerate(self.members):
            where = f"members[{i}]"
            if member.output_activation != "linear":
                raise RecipeError(f"the {member.name} discriminator scores probabilities "
                                  f"(output_activation {member.output_activation!r}); an "
                                  f"ensemble sums logits, so every member must be linear",
                                  path=where)
            if member.image_shape != first.image_shape:
                raise RecipeError(f"takes {member.image_shape} images, member 0 takes "
                                  f"{first.image_shape}: every member must take the same",
                                  path=where)
            if member.num_classes != first.num_classes:
                raise RecipeError(f"has num_classes {member.num_classes}, member 0 has "
                                  f"{first.num_classes}: every member must have the same",
                                  path=where)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.members[0].image_shape

    @property
    def num_classes(self) -> int:
        return self.members[0].num_classes

    @property
    def mixes_batch(self) -> bool:
        return any(m.mixes_batch for m in self.members)

    @property
    def weights(self) -> list[float]:
        return list(self.config["weights"]) or [1.0] * len(self.members)

    def check_recipe(self, recipe, path: str) -> None:
        for i, member in enumerate(self.members):
            member.check_recipe(recipe, f"{path}.members[{i}]")

    def build(self):
        import keras
        from keras import layers

        image = keras.Input(shape=self.image_shape, name="image")
        inputs = [image, label_input()] if self.num_classes else image
        scores = []
        for i, (member, weight) in enumerate(zip(self.members, self.weights)):
            try:
                built = member.build()
            except RecipeError as err:  # a member's key path, below this one
                if err.path and err.path.startswith("discriminator."):
                    err.path = f"discriminator.members[{i}].{err.path.split('.', 1)[1]}"
                raise
            # A fresh name, so that two members of one type do not clash in the ensemble.
            model = keras.Model(built.input, built.output, name=f"member{i}")
            score = model(inputs)
            if weight != 1.0:
                score = layers.Rescaling(weight, dtype="float32", name=f"member{i}_weight")(score)
            scores.append(score)
        if len(scores) == 1:
            score = layers.Activation("linear", dtype="float32", name="score")(scores[0])
        else:
            score = layers.Add(dtype="float32", name="score")(scores)
        return keras.Model(inputs, score, name="ensemble_discriminator")
