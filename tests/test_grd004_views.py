"""GRD004 on what is and is not the parameter: views selected by position,
copies selected by a tensor of indices, a weight frozen by ``requires_grad_``
and a name registered as a parameter only when it is ``None``."""

import textwrap

import pytest

from flake8_gradmode.engine import check
from flake8_gradmode.settings import Settings


def grd004(source):
    found = check(textwrap.dedent(source), Settings(cross_module=False), filename="model.py")
    return [(v.line, v.col) for v in found if v.code == "GRD004"]


POSITIONS_AND_INDICES = """
import torch

weight = torch.nn.Parameter(torch.ones(4, 3))


def scale_rows(ids):
    row = weight[0]
    row.mul_(2)
    for i in range(2):
        other = weight[i, 1:]
        other.add_(1)
    picked = weight[ids]
    picked *= 2
    return picked
"""


def test_a_view_by_position_is_the_parameter_and_a_gather_by_indices_is_a_copy():
    assert grd004(POSITIONS_AND_INDICES) == [(9, 4), (12, 8)]


def test_a_weight_frozen_by_requires_grad_false_can_change_in_place():
    source = """
    import torch



    def smooth(signal):
        conv = torch.nn.Conv1d(1, 1, kernel_size=3, bias=False)
        conv.weight.requires_grad_(False)
        conv.weight *= 0
        conv.weight += 1 / 3
        return conv(signal)
    """
    assert grd004(source) == []
    assert grd004(source.replace("        conv.weight.requires_grad_(False)\n", "")) == [(8, 4), (9, 4)]


def test_a_statistic_registered_as_a_parameter_only_when_none_is_a_buffer():
    source = """
    import torch


    class Norm(torch.nn.Module):
        def __init__(self, n, track):
            super().__init__()
            if track:
                self.register_buffer("running_mean", torch.zeros(n))
            else:
                self.register_parameter("running_mean", None)

        def reset(self):
            self.running_mean.zero_()
    """
    assert grd004(source) == []
    registered = source.replace('register_parameter("running_mean", None)',
                                'register_parameter("running_mean", torch.nn.Parameter(torch.zeros(n)))')
    assert grd004(registered) == [(14, 8)]


WEIGHT_BOUND_TO_ANOTHER_OBJECT = """
import torch
from torch import nn
from tensorlib import FactorizedTensor


class SpectralConv(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.weight = FactorizedTensor.new(shape)
        self.weight.normal_(0, 0.02)
"""


def test_a_weight_attribute_the_class_binds_to_another_object_is_not_a_parameter():
    assert grd004(WEIGHT_BOUND_TO_ANOTHER_OBJECT) == []
    plain = WEIGHT_BOUND_TO_ANOTHER_OBJECT.replace("FactorizedTensor.new(shape)", "torch.empty(shape)")
    assert grd004(plain) == []
    parameter = WEIGHT_BOUND_TO_ANOTHER_OBJECT.replace(
        "FactorizedTensor.new(shape)", "nn.Parameter(torch.empty(shape))"
    )
    assert grd004(parameter) == [(11, 8)]


LOSS_WEIGHTS_FROM_SETTINGS = """
import numpy as np
import torch
from torch import nn
from settings import cfg


class WeightedLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = cfg.LOSS.CLASS_WEIGHTS
        self.weight /= np.sum(self.weight, 1, keepdims=True)
"""


@pytest.mark.parametrize("value, found", [
    ("cfg.LOSS.CLASS_WEIGHTS", []),  # a setting: numbers, not a parameter
    ("[[1.0, 2.0]]", []),
    ("nn.Linear(2, 2).weight", [(12, 8)]),  # another module's weight, tied: a parameter
    ("nn.Parameter(torch.ones(1, 2))", [(12, 8)]),
])
def test_a_weight_attribute_bound_to_a_setting_is_not_a_parameter(value, found):
    assert grd004(LOSS_WEIGHTS_FROM_SETTINGS.replace("cfg.LOSS.CLASS_WEIGHTS", value)) == found


AVERAGE_AFTER_A_TOGGLE = """
import torch


def toggle_grad(model, requires_grad):
    for p in model.parameters():
        p.requires_grad_(requires_grad)


def update_average(target, source, beta):
    toggle_grad(target, False)
    toggle_grad(source, False)
    sources = dict(source.named_parameters())
    for name, p in target.named_parameters():
        p.copy_(beta * p + (1 - beta) * sources[name])
"""


def test_parameters_a_module_helper_switched_off_may_change_in_place():
    assert grd004(AVERAGE_AFTER_A_TOGGLE) == []
    assert grd004(AVERAGE_AFTER_A_TOGGLE.replace("toggle_grad(target, False)", "toggle_grad(target, True)")) == [
        (15, 8)
    ]


NESTED_TOGGLE = """
import torch


def update_average(target, source, beta):
    def toggle_grad(model, requires_grad):
        for p in model.parameters():
            p.requires_grad_(requires_grad)

    toggle_grad(target, False)
    toggle_grad(source, False)
    sources = dict(source.named_parameters())
    for name, p in target.named_parameters():
        p.copy_(beta * p + (1 - beta) * sources[name])
    toggle_grad(target, True)
"""


def test_a_toggle_nested_in_the_function_that_calls_it_switches_grad_off():
    assert grd004(NESTED_TOGGLE) == []
    assert grd004(NESTED_TOGGLE.replace("toggle_grad(target, False)", "toggle_grad(target, True)")) == [(14, 8)]


def test_a_weight_registered_as_a_buffer_in_one_branch_is_a_buffer_there():
    source = """
    import torch


    class Filter(torch.nn.Module):
        def __init__(self, k, fixed):
            super().__init__()
            if fixed:
                self.register_buffer("weight", torch.ones(1, 1, k, k))
                self.weight[0, 0, k // 2, k // 2] = 0
            else:
                self.weight = torch.nn.Parameter(torch.ones(1, 1, k, k))
                self.weight[0, 0, k // 2, k // 2] = 0
    """
    # only the parameter branch raises: a buffer does not require grad
    assert grd004(source) == [(13, 12)]
    both = source.replace('self.register_buffer("weight", torch.ones(1, 1, k, k))',
                          'self.weight = torch.nn.Parameter(torch.ones(1, 1, k, k))')
    assert grd004(both) == [(10, 12), (13, 12)]


FROZEN_BLOCK = """
import torch


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)


def identity_block():
    block = Block()
    block.requires_grad_(False)
    block.lin.weight.zero_()
    block.lin.weight.fill_diagonal_(1)
    return block
"""


def test_parts_of_a_module_whose_grad_was_switched_off_may_change_in_place():
    """``block.requires_grad_(False)`` reaches every parameter of the block."""
    assert grd004(FROZEN_BLOCK) == []
    exec(compile(textwrap.dedent(FROZEN_BLOCK) + "\nidentity_block()\n", "frozen_block", "exec"), {})


def test_a_part_switched_back_on_is_reported():
    source = FROZEN_BLOCK.replace(
        "    block.lin.weight.zero_()", "    block.lin.requires_grad_(True)\n    block.lin.weight.zero_()"
    )
    assert grd004(source) == [(15, 4), (16, 4)]
    try:
        exec(compile(textwrap.dedent(source) + "\nidentity_block()\n", "thawed_block", "exec"), {})
    except RuntimeError as error:
        assert "leaf Variable that requires grad" in str(error)
    else:
        raise AssertionError("the in-place change should raise")


FULLY_CONVOLUTIONAL_TEST_HEAD = """
import torch
from torch import nn


class Head(nn.Module):
    def __init__(self, channels, classes):
        super().__init__()
        self.fc = nn.Linear(channels, classes)
        self.conv = None

    def _make_conv(self):
        self.conv = nn.Conv2d(self.fc.in_features, self.fc.out_features, 1)
        self.conv.weight.copy_(self.fc.weight[..., None, None])

    def forward(self, x, dense=False):
        if dense:
            if self.conv is None:
                self._make_conv()
            return self.conv(x)
        return self.fc(x.mean((2, 3)))
"""


@pytest.mark.parametrize("source, expected", [
    # only ``forward`` builds the layer, on first use: the model's caller owns the grad mode
    (FULLY_CONVOLUTIONAL_TEST_HEAD, []),
    # built when the model is: construction runs with grad on
    (FULLY_CONVOLUTIONAL_TEST_HEAD.replace("self.conv = None", "self._make_conv()"), [(14, 8)]),
    # a public method anyone may call
    (FULLY_CONVOLUTIONAL_TEST_HEAD.replace("_make_conv", "make_conv"), [(14, 8)]),
])
def test_a_private_method_only_forward_calls_runs_in_the_callers_grad_mode(source, expected):
    assert grd004(source) == expected


LIST_OF_BIASES = """
import torch
from torch import nn


class Bias(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.bias = []
        for size in sizes:
            self.bias += [nn.Parameter(torch.zeros(size))]
        self.bias = nn.ParameterList(self.bias)
"""

QUERY_FROM_AN_EMBEDDING = """
import torch
from torch import nn


class Decoder(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.cls_embed = nn.Parameter(torch.zeros(1, 4, 8))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, feat):
        for idx, block in enumerate(self.blocks):
            if idx == 0:
                query = self.cls_embed.expand(feat.shape[0], -1, -1)
            else:
                query += self.cls_embed.expand(feat.shape[0], -1, -1)
            query, feat = block(query, feat)
        return query
"""

PLAIN_HOLDER = """
import torch


class Splits:
    def __init__(self, size):
        self.bias = torch.zeros(size)
        self.val = torch.zeros(size).requires_grad_()

    def load(self, values):
        self.bias.copy_(values)
"""


@pytest.mark.parametrize("source, expected", [
    # ``+= [p]`` grows a list, before it becomes a ParameterList
    (LIST_OF_BIASES, []),
    # the ``else`` branch adds to what the block returned, not to the embedding's view
    (QUERY_FROM_AN_EMBEDDING, []),
    (QUERY_FROM_AN_EMBEDDING.replace("            else:\n                query +=", "            query +="),
     [(16, 12)]),
    # a plain class: ``self.bias`` is a tensor of its own, no parameter
    (PLAIN_HOLDER, []),
    # ... unless it makes it one
    (PLAIN_HOLDER.replace("self.bias = torch.zeros(size)", "self.bias = torch.nn.Parameter(torch.zeros(size))"),
     [(11, 8)]),
])
def test_targets_that_are_no_parameter_at_that_line(source, expected):
    assert grd004(source) == expected


# A loss keeps its class weights in a plain list named ``weight``: no parameter.
LIST_OF_WEIGHTS = """
import torch
import torch.nn as nn


class ReweightedLoss(nn.Module):
    def __init__(self, counts, max_clip=10.0):
        super().__init__()
        self.weight = [None] * len(counts)
        for i, count in enumerate(counts):
            self.weight[i] = torch.tensor(count, dtype=torch.float32)
            self.weight[i][self.weight[i] > max_clip] = max_clip
            self.weight[i].clamp_(min=1.0)
"""


@pytest.mark.parametrize("bound, expected", [
    ("[None] * len(counts)", []),
    ("[None for _ in counts]", []),
    # a parameter of its own: changed in place while grad is on
    ("nn.Parameter(torch.ones(len(counts)))", [(11, 12), (12, 12), (13, 12)]),
])
def test_a_plain_list_attribute_named_weight_is_no_parameter(bound, expected):
    assert grd004(LIST_OF_WEIGHTS.replace("[None] * len(counts)", bound)) == expected


# A helper of another module switches the flag off before the layer is filled.
HELPER_FROZEN_LAYER = """
import torch
from util import nethook


def make_transform(mean, d):
    layer = torch.nn.Linear(d, d)
    nethook.set_requires_grad(False, layer)
    layer.bias[...] = mean
    layer.weight[...] = torch.eye(d)
    return layer
"""


@pytest.mark.parametrize("flag, expected", [
    ("False", []),
    ("True", [(9, 4), (10, 4)]),
])
def test_a_layer_a_set_requires_grad_helper_switched_off(flag, expected):
    assert grd004(HELPER_FROZEN_LAYER.replace("(False, layer)", f"({flag}, layer)")) == expected


# A module that ports a layer to MLX beside its PyTorch code: that class's
# weights are MLX arrays, which have no grad mode to clash with.
MLX_PORT = """
import mlx.core as mx
import mlx.nn as nn

import torch


class DepthwiseConv(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3)
        self.conv.weight *= mx.ones_like(self.conv.weight)


def from_torch(weight):
    return mx.array(weight.detach().numpy())
"""


@pytest.mark.parametrize("nn_module, expected", [
    ("mlx.nn", []),
    ("torch.nn", [(12, 8)]),
])
def test_a_weight_of_another_frameworks_module_is_no_parameter(nn_module, expected):
    assert grd004(MLX_PORT.replace("import mlx.nn as nn", f"import {nn_module} as nn")) == expected


SKIPPED_TEST = """
import pytest
import torch


@pytest.mark.skip(reason="to be rewritten")
def test_symmetry():
    layer = torch.nn.Linear(2, 2)
    layer.weight.fill_(1.0)
    assert torch.equal(layer.weight, layer.weight.t())
"""


@pytest.mark.parametrize("decorator, expected", [
    ('@pytest.mark.skip(reason="to be rewritten")', []),  # the runner never runs it
    ('@unittest.skip("to be rewritten")', []),
    ('@pytest.mark.skipif(torch.cuda.is_available(), reason="cpu")', [("GRD004", 9, 4)]),  # it may run
    ("", [("GRD004", 9, 4)]),
])
def test_a_test_skipped_always_never_runs(decorator, expected):
    source = SKIPPED_TEST.replace('@pytest.mark.skip(reason="to be rewritten")', decorator)
    if decorator.startswith("@unittest"):
        source = source.replace("import pytest\n", "import unittest\n")
    found = check(source, Settings(cross_module=False), filename="tests/test_model.py")
    assert [(v.code, v.line, v.col) for v in found if v.code == "GRD004"] == expected


# a helper of the module switches its argument's grad off before it writes
# sinusoids into it; the caller then scales the table in place
FROZEN_BY_A_HELPER = """
import torch


def sinusoidal_table(n, dim, out):
    out.requires_grad = False
    out[:, 0::2] = torch.sin(torch.arange(n * dim // 2).view(n, -1).float())
    out.detach_()


class Positions(torch.nn.Module):
    def __init__(self, n, dim):
        super().__init__()
        self.table = torch.nn.Embedding(n, dim)
        sinusoidal_table(n, dim, out=self.table.weight)
        self.table.weight *= 0.5
"""


@pytest.mark.parametrize("change, expected", [
    (None, []),
    # handed by position: the same parameter
    (("out=self.table.weight", "self.table.weight"), []),
    # the helper switches it off only on one path: it may still require grad
    (("    out.requires_grad = False\n", "    if n > 9:\n        out.requires_grad = False\n"), [(17, 8)]),
    # and back on before it returns
    (("    out.detach_()\n", "    out.detach_()\n    out.requires_grad_()\n"), [(17, 8)]),
    # another tensor handed to it: the parameter still requires grad
    (("out=self.table.weight", "out=torch.empty(n, dim)"), [(16, 8)]),
])
def test_a_parameter_a_helper_switched_off(change, expected):
    source = FROZEN_BY_A_HELPER.replace(*change) if change else FROZEN_BY_A_HELPER
    assert change is None or source != FROZEN_BY_A_HELPER
    assert grd004(source) == expected
