"""Built-in plugin: the frog DCGAN of Chollet's CIFAR-10 example (generator, discriminator,
and the alternating training strategy)."""

import gankit


@gankit.hookimpl
def gankit_register_components(register):
    from gankit_dcgan.discriminator import FrogDCGANDiscriminator
    from gankit_dcgan.generator import FrogDCGANGenerator
    from gankit_dcgan.strategy import AlternatingStrategy

    register(FrogDCGANGenerator)
    register(FrogDCGANDiscriminator)
    register(AlternatingStrategy)
