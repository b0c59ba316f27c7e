"""A discriminator on the features of a frozen, pretrained classifier (Projected GAN).

Sauer, Chitta, Müller and Geiger, "Projected GANs Converge Faster" (NeurIPS 2021): the
discriminator does not learn its features from the few images a GAN sees; it judges the
features of a network pretrained on many images, projected by fixed random 1x1
convolutions, with a small trainable head at each scale. gankit's version takes its
backbone from a ``.keras`` classifier (``gankit train-classifier`` makes one offline).
"""

from __future__ import annotations

import os

import gankit
from gankit import Discriminator, Param
from gankit.errors import GankitError, RecipeError
from gankit.params import REQUIRED
from gankit_nets.layers import batch_norm  # the DCGAN's: momentum 0.9, epsilon 1e-5

DEFAULT_LAYERS = ["block1_2_relu", "block2_2_relu"]


class ProjectedDiscriminator(Discriminator):
    """A frozen classifier's features at a few scales, each judged by a small trained head.

    image (in ``image_range``) -> mapped to the backbone's ``input_range`` -> the backbone
    (frozen, batch norm in inference mode) -> for each layer in ``layers``: a fixed random
    1x1 convolution to ``mix_channels`` (the paper's cross-channel mixing; none if 0) ->
    [Conv2D(``head_filters``, 4, strides 2, 'same') -> BN -> LeakyReLU] down to 4x4 ->
    Conv2D(1, 4, 'valid'): one logit per scale; the score is their sum (a logit,
    ``output_activation = "linear"``).

    The backbone is any saved Keras model with those layers; the defaults fit the network
    ``gankit train-classifier`` makes (layers ``block1_2_relu`` at 16x16 and
    ``block2_2_relu`` at 8x8 of a 32x32 input in [0, 1]). Its weights are part of the
    discriminator (checkpoints hold them) but never trained. **Evaluate such a GAN with an
    extractor trained separately** (another seed and width): FID in the backbone's own
    features would measure what the discriminator was trained to see.
    """

    name = "projected"
    output_activation = "linear"
    params = {
        "backbone": Param(str, REQUIRED, is_path=True,
                          doc="the .keras classifier whose features to judge (gankit "
                              "train-classifier makes one); frozen"),
        "layers": Param(list, DEFAULT_LAYERS, item_type=str,
                        doc="the backbone's layers whose outputs the heads judge (one head "
                            "each)"),
        "input_range": Param(list, [0.0, 1.0], item_type=float, length=2,
                             doc="the value range the backbone takes ([0, 1] for gankit "
                                 "train-classifier's)"),
        "image_range": Param(list, [-1.0, 1.0], item_type=float, length=2,
                             doc="the value range of the images it judges: the dataset's "
                                 "scale (checked against it)"),
        "height": Param(int, 32, min=8, max=1024, doc="image height"),
        "width": Param(int, 32, min=8, max=1024, doc="image width"),
        "channels": Param(int, 3, min=1, max=64, doc="image channels"),
        "mix_channels": Param(int, 64, min=0, max=4096,
                              doc="channels of the fixed random 1x1 projection of each "
                                  "feature map (0: the features as they are)"),
        "head_filters": Param(int, 64, min=1, max=4096,
                              doc="channels of each head's stride-2 convolutions"),
        "norm": Param(str, "batch", choices=("batch", "none"),
                      doc="batch norm in the heads, or none"),
        "leaky_relu_slope": Param(float, 0.2, min=0.0, max=1.0,
                                  doc="negative slope of the heads' LeakyReLU"),
        "seed": Param(int, 0, min=0, max=2 ** 31 - 1,
                      doc="seed of the fixed random projections"),
    }

    def __init__(self, **config):
        super().__init__(**config)
        c = self.config
        if not c["layers"]:
            raise RecipeError("name at least one layer of the backbone", path="layers")
        if len(set(c["layers"])) != len(c["layers"]):
            raise RecipeError(f"a layer is listed twice: {c['layers']}", path="layers")
        for key in ("input_range", "image_range"):
            low, high = c[key]
            if not low < high:
                raise RecipeError(f"expected [LOW, HIGH] with LOW < HIGH, got {c[key]}",
                                  path=key)

    @property
    def mixes_batch(self) -> bool:
        return self.config["norm"] == "batch"

    def check_recipe(self, recipe, path: str) -> None:
        backbone = self.config["backbone"]
        if not os.path.isfile(backbone):
            raise RecipeError(f"{backbone} is not a file; expected a .keras classifier (make "
                              f"one with gankit train-classifier)", path=f"{path}.backbone",
                              source=recipe.source)
        if _not_a_keras_zip(backbone):
            raise RecipeError(_NOT_A_ZIP.format(backbone), path=f"{path}.backbone",
                              source=recipe.source)
        dataset = recipe.create("dataset")
        scale = [float(v) for v in getattr(dataset, "value_range", self.config["image_range"])]
        if scale != [float(v) for v in self.config["image_range"]]:
            raise RecipeError(f"the dataset's images are in {scale}, not {self.config['image_range']}; "
                              f"set {path}.image_range: {scale}", path=f"{path}.image_range",
                              source=recipe.source)

    def build(self):
        import keras
        from keras import layers

        c = self.config
        backbone = _load_backbone(c["backbone"])
        taps = []
        for name in c["layers"]:
            try:
                taps.append(backbone.get_layer(name).output)
            except ValueError:
                names = [layer.name for layer in backbone.layers]
                raise RecipeError(f"the backbone {c['backbone']} has no layer {name!r} (it "
                                  f"has {', '.join(names[:12])}{', ...' if len(names) > 12 else ''})",
                                  path="discriminator.layers") from None
        features = keras.Model(backbone.inputs, taps, name="backbone")
        features.trainable = False

        image = keras.Input(shape=self.image_shape, name="image")
        (a, b), (lo, hi) = c["image_range"], c["input_range"]
        scale = (hi - lo) / (b - a)
        x = layers.Rescaling(scale, offset=lo - a * scale, name="to_backbone_range")(image)
        maps = features(x, training=False)
        maps = maps if isinstance(maps, (list, tuple)) else [maps]
        scores = []
        for i, (name, h) in enumerate(zip(c["layers"], maps)):
            if len(h.shape) != 4:
                raise RecipeError(f"layer {name!r} of the backbone gives {tuple(h.shape)}, not "
                                  f"a feature map (batch, height, width, channels)",
                                  path="discriminator.layers")
            if c["mix_channels"]:
                h = layers.Conv2D(c["mix_channels"], 1, use_bias=False, trainable=False,
                                  kernel_initializer=keras.initializers.HeNormal(c["seed"] + i),
                                  name=f"head{i}_mix")(h)
            size, j = min(h.shape[1], h.shape[2]), 0
            while size > 4:
                j += 1
                h = layers.Conv2D(c["head_filters"], 4, strides=2, padding="same",
                                  use_bias=c["norm"] == "none",
                                  kernel_initializer=keras.initializers.RandomNormal(
                                      stddev=0.02, seed=c["seed"] + 100 * i + j),
                                  name=f"head{i}_down{j}")(h)
                if c["norm"] == "batch":
                    h = batch_norm(h, f"head{i}_down{j}")
                h = layers.LeakyReLU(c["leaky_relu_slope"], name=f"head{i}_down{j}_lrelu")(h)
                size = (size + 1) // 2
            h = layers.Conv2D(1, min(size, 4), padding="valid",
                              kernel_initializer=keras.initializers.RandomNormal(
                                  stddev=0.02, seed=c["seed"] + 100 * i + 99),
                              name=f"head{i}_logit")(h)
            scores.append(layers.GlobalAveragePooling2D(name=f"head{i}_score")(h))
        score = scores[0] if len(scores) == 1 else layers.Add(name="score")(scores)
        return keras.Model(image, score, name="projected_discriminator")


_NOT_A_ZIP = ("{} is not a .keras file (a .keras model is a zip archive); make one with "
              "gankit train-classifier")


def _not_a_keras_zip(path: str) -> bool:
    import zipfile

    return path.endswith(".keras") and os.path.isfile(path) and not zipfile.is_zipfile(path)


def _load_backbone(path: str):
    import keras

    if _not_a_keras_zip(path):
        raise RecipeError(_NOT_A_ZIP.format(path), path="discriminator.backbone")
    try:  # with the Keras objects the plugins declare (their gankit_keras_objects hooks)
        model = gankit.load_keras_model(path)
    except GankitError as exc:  # any reason a file is not a Keras model, or a missing class
        reason = getattr(exc, "reason", str(exc))
        raise RecipeError(f"cannot load {path} as a Keras model: {' '.join(reason.split())}",
                          path="discriminator.backbone") from None
    if not isinstance(model, keras.Model) or not model.inputs:
        raise RecipeError(f"{path} is not a functional Keras model with inputs",
                          path="discriminator.backbone")
    return model

