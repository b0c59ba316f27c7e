"""Built-in plugin: the frog DCGAN models of Chollet's CIFAR-10 example (generator and
discriminator). The article's training step is the ``gan`` strategy configured as the
article (recipes/frog_dcgan.yaml)."""

import gankit


@gankit.hookimpl
def gankit_register_components(register):
    from gankit_dcgan.discriminator import FrogDCGANDiscriminator
    from gankit_dcgan.generator import FrogDCGANGenerator

    register(FrogDCGANGenerator)
    register(FrogDCGANDiscriminator)
