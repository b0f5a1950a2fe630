"""Random E2E-HIM weights in our layout and in the official checkpoint's layout, for tests."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from livematte.model.checkpoint import official_manifest
from livematte.model.e2ehim import E2EHIM
from livematte.model.official_names import is_unused, our_name
from livematte.model.swin import relative_position_index


def random_model(seed: int = 0, fused_alpha: bool = True, people: bool = False) -> E2EHIM:
    """A model whose norms, biases and PAM gamma are random too, so no term is trivially zero/one.
    people: every query is a person (p = sigmoid(5)), whatever the picture."""
    torch.manual_seed(seed)
    model = E2EHIM(fused_alpha=fused_alpha).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.GroupNorm, nn.LayerNorm)):
                module.weight.normal_(1.0, 0.2)
                module.bias.normal_(0.0, 0.2)
        model.fusion.attention.gamma.fill_(0.5)
        if people:
            classes = model.perception.class_head.layers[-1]
            classes.weight.zero_()
            classes.bias.copy_(torch.tensor([0.0, 5.0]))
    return model


def whole_frame_people_model() -> E2EHIM:
    """Every query is a person (p = sigmoid(5)) with a foreground trimap everywhere: 20 whole-frame mattes."""
    model = random_model(seed=5, people=True)
    with torch.no_grad():
        matting = model.perception.matting_head.layers[-1]
        matting.weight.zero_()
        matting.bias.zero_()
        matting.bias[770] = 10.0  # trimap bias of class foreground; the trimap kernel is zero
    return model


def unknown_trimap_model(seed: int, people: bool = False) -> E2EHIM:
    """Random weights, but every query's trimap says "unknown" everywhere: mattes are the raw alphas.

    A random trimap has near-ties between classes somewhere, where 1e-5 of numerical noise flips a
    pixel between 0, alpha and 1; with this one, two engines' mattes compare to the alpha's precision.
    people: every query is a person whose alpha is lifted by one half (mattes large enough to be kept,
    each following the picture).
    """
    model = random_model(seed=seed, people=people)
    with torch.no_grad():
        matting = model.perception.matting_head.layers[-1]
        trimap_rows = 3 * 256 + 3  # the trimap kernels and biases come first
        matting.weight[:trimap_rows].zero_()
        matting.bias[:trimap_rows].zero_()
        matting.bias[3 * 256 + 1] = 10.0  # bias of class "unknown"
        if people:
            matting.bias[-1] = 0.5  # the alpha's bias
    return model


def official_state(model: nn.Module, seed: int = 1) -> dict[str, Tensor]:
    """The model's weights under the official names, plus the tensors the official network never uses."""
    ours = model.state_dict()
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, spec in official_manifest().items():
        if name.endswith(".relative_position_index"):
            state[name] = relative_position_index(7)
        elif is_unused(name):
            state[name] = torch.randn(spec.shape, generator=generator)
        else:
            state[name] = ours[our_name(name)].clone()
    return state
