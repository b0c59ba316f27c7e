"""Built-in datasets: CIFAR-10 (all classes or a few), a folder of images, and any
TensorFlow Datasets dataset prepared locally (``tfds``, with the optional package)."""

import gankit


@gankit.hookimpl
def gankit_register_components(register):
    from gankit_datasets.cifar10 import Cifar10Dataset
    from gankit_datasets.image_folder import ImageFolderDataset
    from gankit_datasets.tfds_dataset import TfdsDataset

    register(Cifar10Dataset)
    register(ImageFolderDataset)
    register(TfdsDataset)
