"""cnncourse: the code that the chapters, the exercises' solutions and the autograder share.

Modules: ``config`` (environment switches), ``data`` (Fashion-MNIST), ``ops`` (from-scratch
convolution and pooling), ``models`` (LeNet, VGG, Residual, ResNet-18) and ``trainer`` (the
fast trainer). Importing the package has no side effects and does not import torch.
"""
__all__ = ["config", "data", "ops", "models", "trainer"]
__version__ = "0.1.0"
