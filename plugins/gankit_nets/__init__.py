"""Built-in plugin: standard GAN architectures (DCGAN, the SNGAN CIFAR ResNet), the projected
discriminator and ensembles of discriminators."""

import gankit


@gankit.hookimpl
def gankit_register_components(register):
    from gankit_nets.dcgan import DCGANDiscriminator, DCGANGenerator
    from gankit_nets.ensemble import EnsembleDiscriminator
    from gankit_nets.projected import ProjectedDiscriminator
    from gankit_nets.resnet import ResNetDiscriminator, ResNetGenerator

    for component in (DCGANGenerator, DCGANDiscriminator, ResNetGenerator, ResNetDiscriminator,
                      ProjectedDiscriminator, EnsembleDiscriminator):
        register(component)
