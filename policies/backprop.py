"""The backward pass of an MLP written out by hand, for SAC's explicit-gradient update.

An MLP here is affine layers with ReLU between them (networks.mlp.mlp, and EnsembleQ's stack
of EnsembleLinear):
    z_l = h_{l-1} W_l + b_l,   h_l = relu(z_l),   h_0 = x,   y = z_L.
`forward_keeping_inputs` returns y and every layer's input [h_0, ..., h_{L-1}]; `param_grads`
and `input_grad` take dL/dy and walk the layers in reverse:
    dL/dW_l = h_{l-1}^T dL/dz_l,   dL/db_l = sum over rows of dL/dz_l,
    dL/dh_{l-1} = dL/dz_l W_l^T,   dL/dz_{l-1} = dL/dh_{l-1} * 1[h_{l-1} > 0]   (ReLU').
These are the same matrix products autograd runs; by hand, no graph of small nodes is built
and walked, which on a CPU costs a SAC step about as much as its element-wise arithmetic
(benchmarks/NOTES.md). Call them under torch.no_grad(). tests/policies/test_backprop.py
checks every gradient against autograd.

Layer layouts: nn.Linear stores weight (out, in) and computes x W^T + b on (B, in);
EnsembleLinear stores weight (E, in, out) and computes x W + b on (E, B, in).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from policies.critic import EnsembleLinear, EnsembleQ

Layer = nn.Linear | EnsembleLinear


def unsupported(net: nn.Module) -> str | None:
    """Why these functions cannot differentiate `net`, or None when they can: exactly an
    nn.Sequential of nn.Linear layers with nn.ReLU between them (networks.mlp), or an EnsembleQ
    of EnsembleLinear layers. Anything else (another activation, a LayerNorm, a subclass) is named.
    A changed forward() of these very classes is not visible here; SAC's first-update gradient
    check against autograd catches that."""
    if type(net) is EnsembleQ:
        others = sorted({type(m).__name__ for m in net.layers if type(m) is not EnsembleLinear})
        return f"EnsembleQ with {', '.join(others)} layers" if others else None
    if type(net) is not nn.Sequential:
        return f"a {type(net).__name__}, not an nn.Sequential MLP"
    kinds = [type(m) for m in net]
    expected = [nn.Linear, nn.ReLU] * (len(kinds) // 2) + [nn.Linear]
    if kinds != expected:
        return ("an MLP of " + " -> ".join(kind.__name__ for kind in kinds)
                + ", not Linear with ReLU between")
    return None


def affine_layers(net: nn.Module) -> list[Layer]:
    """The affine layers of an MLP in order (the ReLUs between them are implied)."""
    return [m for m in net.modules() if isinstance(m, nn.Linear | EnsembleLinear)]


def forward_keeping_inputs(layers: Sequence[Layer], x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """y = MLP(x) and the input of every layer.

    Shapes: x (B, in) for nn.Linear layers, (E, B, in) for EnsembleLinear; y (..., out).
    """
    inputs = []
    for index, layer in enumerate(layers):
        inputs.append(x)
        x = affine(layer, x)
        if index < len(layers) - 1:
            x = x.relu_()  # h_l = relu(z_l), in place: z_l is not needed by the backward
    return x, inputs


def param_grads(layers: Sequence[Layer], inputs: Sequence[Tensor],
                grad_out: Tensor) -> list[Tensor]:
    """[dL/dW_1, dL/db_1, ..., dL/dW_L, dL/db_L] from dL/dy, in `parameters()` order and shaped
    like the parameters.

    Shapes: inputs from `forward_keeping_inputs`; grad_out like y.
    """
    grads: list[Tensor] = []
    grad_z = grad_out
    for index in reversed(range(len(layers))):
        grads[:0] = affine_param_grads(layers[index], inputs[index], grad_z)
        if index > 0:
            grad_z = relu_backward(affine_input_grad(layers[index], grad_z), inputs[index])
    return grads


def input_grad(layers: Sequence[Layer], inputs: Sequence[Tensor], grad_out: Tensor) -> Tensor:
    """dL/dx from dL/dy, with no weight gradients computed.

    Shapes: inputs from `forward_keeping_inputs`; grad_out like y; dL/dx like x.
    """
    grad_z = grad_out
    for index in reversed(range(len(layers))):
        grad_h = affine_input_grad(layers[index], grad_z)
        grad_z = relu_backward(grad_h, inputs[index]) if index > 0 else grad_h
    return grad_z


def relu_backward(grad_h: Tensor, h: Tensor) -> Tensor:
    """dL/dz of h = relu(z): ReLU' = 1[z > 0] = 1[h > 0], so zero dL/dh where h is 0."""
    return torch.ops.aten.threshold_backward(grad_h, h, 0.0)


def affine(layer: Layer, x: Tensor) -> Tensor:
    """z = x W + b in the layer's own layout: the matmul, then the bias (as EnsembleLinear.forward,
    which says why)."""
    if isinstance(layer, nn.Linear):
        return torch.mm(x, layer.weight.t()) + layer.bias  # (B, in) @ (in, out) + (out,)
    return layer(x)  # (E, B, in) @ (E, in, out) + (E, 1, out)


def affine_param_grads(layer: Layer, h: Tensor, grad_z: Tensor) -> list[Tensor]:
    """[dL/dweight, dL/dbias] of z = h W + b, shaped like the layer's parameters."""
    if isinstance(layer, nn.Linear):
        return [grad_z.t() @ h, grad_z.sum(0)]  # (out, B) @ (B, in); (out,)
    # (E, in, B) @ (E, B, out); (E, 1, out)
    return [h.transpose(1, 2) @ grad_z, grad_z.sum(1, keepdim=True)]


def affine_input_grad(layer: Layer, grad_z: Tensor) -> Tensor:
    """dL/dh = dL/dz W^T."""
    if isinstance(layer, nn.Linear):
        return grad_z @ layer.weight  # (B, out) @ (out, in)
    return grad_z @ layer.weight.transpose(1, 2)  # (E, B, out) @ (E, out, in)
