"""Building blocks shared by the policies and the model packages (vae, bnn); imports torch only.

`mlp` builds every multilayer perceptron; `bounded_log_scale` is the one smooth bound on a
log standard deviation (the policies' log-std, the VAE posterior's log-sigma).
"""

from networks.log_scale import bounded_log_scale, bounded_log_scale_grad
from networks.mlp import mlp

__all__ = ["bounded_log_scale", "bounded_log_scale_grad", "mlp"]
