"""How the official checkpoint's tensor names map to ours (see e2ehim.py for our module tree).

The mapping is built from module-level rules (official module prefix -> our module prefix; the
parameter suffix carries over). Bump MAPPING_VERSION whenever a rule changes: installed weights
record the version they were converted with.
"""

from __future__ import annotations

from functools import lru_cache

from livematte.model.swin import DEPTHS

MAPPING_VERSION = 1
UNUSED_PREFIXES = ("conv1.", "conv2.")  # built by the official network, never used by its forward
UNUSED_SUFFIX = ".relative_position_index"  # a derived buffer, rebuilt by our model


def is_unused(name: str) -> bool:
    """True for the official tensors our network does not need (the only ones an import may skip)."""
    return name.startswith(UNUSED_PREFIXES) or name.endswith(UNUSED_SUFFIX)


def _conv_norm(official: str, ours: str, conv: int = 0, norm: int = 1) -> dict[str, str]:
    return {f"{official}.{conv}": f"{ours}.conv", f"{official}.{norm}": f"{ours}.norm"}


def _res_block(official: str, ours: str) -> dict[str, str]:
    return {
        f"{official}.in_conv1.0": f"{ours}.reduce.conv", f"{official}.in_conv1.1.gn": f"{ours}.reduce.norm",
        f"{official}.in_conv1.3": f"{ours}.conv.conv", f"{official}.in_conv1.4.gn": f"{ours}.conv.norm",
        f"{official}.in_conv1.6": f"{ours}.expand.conv", f"{official}.in_conv1.7.gn": f"{ours}.expand.norm",
    }


def _conv_res_stage(official: str, ours: str, blocks: int) -> dict[str, str]:
    """Official Sequential: conv (0), GN (1), act (2), residual blocks from index 3."""
    rules = _conv_norm(official, f"{ours}.entry")
    for i in range(blocks):
        rules |= _res_block(f"{official}.{3 + i}", f"{ours}.blocks.{i}")
    return rules


def _backbone_rules() -> dict[str, str]:
    rules = {"trans.patch_embed": "backbone.patch_embed"}
    for i, depth in enumerate(DEPTHS):
        rules[f"trans.norm{i}"] = f"backbone.out_norms.{i}"
        rules[f"trans.layers.{i}.downsample"] = f"backbone.merges.{i}"
        for j in range(depth):
            rules[f"trans.layers.{i}.blocks.{j}"] = f"backbone.stages.{i}.blocks.{j}"
    return rules


def _perception_rules() -> dict[str, str]:
    rules = _conv_norm("toplayer", "perception.memory_proj") | {
        "query_embed.weight": "perception.query_pos",
        "decoder1.norm.0": "perception.norm",
        "globalfcnum": "perception.class_head",
        "globalfc": "perception.guidance_head",
        "globalfck": "perception.value_head",
        "globalfc2": "perception.matting_head",
    }
    for i in range(6):
        layer = f"perception.layers.{i}"
        rules |= {f"decoder1.layers.{i}": layer, f"decoder1.layers.{i}.multihead_attn": f"{layer}.cross_attn"}
    return rules


def _head_rules() -> dict[str, str]:
    rules = {
        "c1t1": "guidance.0.background_logit", "c1t2": "guidance.1.background_logit",
        "otherwright1.0": "guidance.0.background_value", "otherwright2.0": "guidance.1.background_value",
        "g1": "guidance.0.norm", "g2": "guidance.1.norm",
        "pam.gamma": "fusion.attention.gamma", "pam.query_conv": "fusion.attention.query",
        "pam.key_conv": "fusion.attention.key", "pam.value_conv": "fusion.attention.value",
        "c1.0": "alpha.conv1", "c1.2": "alpha.conv2",
    }
    rules |= _conv_norm("c32m", "context.reduce32")
    rules |= _conv_res_stage("c16m", "context.stage16", 2)
    rules |= _conv_res_stage("c8m", "context.stage8", 2)
    rules |= _conv_norm("c8m", "context.project8", conv=5, norm=6)
    rules |= _conv_res_stage("c8d", "fusion.fuse8", 2)
    rules |= _conv_norm("c8d2", "fusion.down16")
    rules |= _conv_res_stage("c16", "fusion.fuse16", 2)
    rules |= _conv_norm("c16d", "fusion.down32")
    rules |= _conv_res_stage("c32", "fusion.fuse32", 1)
    rules |= _conv_res_stage("c32b", "fusion.post32", 2)
    rules |= _conv_res_stage("c16u", "fusion.up16", 2)
    rules |= _conv_res_stage("c8", "fusion.up8", 2)
    rules |= _conv_norm("c8d3", "trimap.conv1") | _conv_norm("c8d3", "trimap.conv2", conv=4, norm=5)
    rules |= _conv_res_stage("c4", "refiner.stage4", 3)
    rules |= _conv_norm("c2", "refiner.stage2.0") | _conv_norm("c2", "refiner.stage2.1", conv=3, norm=4)
    rules |= _conv_norm("pre_conv", "stem.conv1") | _conv_norm("pre_conv", "stem.conv2", conv=3, norm=4)
    rules |= _conv_norm("res1", "stem.conv3") | _conv_norm("ds1", "stem.down")
    return rules


@lru_cache(maxsize=1)
def _rules() -> dict[str, str]:
    return _backbone_rules() | _perception_rules() | _head_rules()


def our_name(official: str) -> str:
    """Our state-dict key for an official one (the longest matching module rule wins)."""
    rules = _rules()
    parts = official.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in rules:
            return ".".join([rules[prefix], *parts[end:]])
    raise KeyError(f"no mapping rule for official tensor {official!r}")
