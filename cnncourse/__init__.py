"""cnncourse: the code that the chapters, the exercises' solutions and the autograder share.

Modules: ``config`` (environment switches), ``data`` (Fashion-MNIST), ``ops`` (from-scratch
convolution and pooling), ``models`` (LeNet, VGG, Residual, ResNet-18), ``trainer`` (the
fast trainer), ``history`` (what a run records) and ``progress`` (the progress display of the
trainer and the autograder). Importing the package has no side effects and does not import torch.
"""
__all__ = ["config", "data", "ops", "models", "trainer", "history", "progress"]
__version__ = "0.1.0"
