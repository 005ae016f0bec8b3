"""alexnet-cifar10"""

__version__ = "0.1"
