"""graphc.nn: activations, softmax family, losses, convolution, pooling, dropout.

Every function works inside traced functions (its gradient flows through the
same trace -> AD -> codegen path) and on plain NumPy arrays (evaluated
eagerly, returning NumPy arrays).
"""
from . import init
from .activations import elu, leaky_relu, maxout, relu, sigmoid, softplus, tanh
from .conv import (avg_pool1d, avg_pool2d, conv1d, conv2d, flatten, lp_pool2d, max_pool1d,
                   max_pool2d)
from .dropout import dropout
from .losses import cross_entropy, log_softmax, logistic_loss, logsumexp, mse, softmax

__all__ = ["sigmoid", "relu", "leaky_relu", "elu", "softplus", "maxout", "tanh", "softmax",
           "log_softmax", "logsumexp", "cross_entropy", "logistic_loss", "mse", "conv1d",
           "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "lp_pool2d",
           "flatten", "dropout", "init"]
