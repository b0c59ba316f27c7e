"""Built-in datasets: CIFAR-10 (with a class filter) and a folder of images."""

import gankit


@gankit.hookimpl
def gankit_register_components(register):
    from gankit_datasets.cifar10 import Cifar10Dataset
    from gankit_datasets.image_folder import ImageFolderDataset

    register(Cifar10Dataset)
    register(ImageFolderDataset)
