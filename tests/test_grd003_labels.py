"""GRD003 on tensors of labels: they never require grad, so a ``volatile=``
flag on them never stopped a graph; the same flag on the inputs did."""

import textwrap

import pytest

from flake8_gradmode.engine import check
from flake8_gradmode.settings import Settings

ALONE = Settings(cross_module=False)


#: Every source here is a module run on a current release, which one call only
#: PyTorch 0.4 and later have (``.item()``) says: GRD003 reads only such modules.
RUN_TODAY = "\n\nimport torch\nprint(torch.zeros(1).item())\n"


def found(source):
    source = textwrap.dedent(source) + RUN_TODAY
    return sorted((v.line, v.col) for v in check(source, ALONE, filename="train.py") if v.code == "GRD003")


DIRECT = """
import torch
from torch.autograd import Variable


def validate(net, loader, criterion):
    for images, anns in loader:
        images = Variable(images.cuda(), volatile=True)
        targets = [Variable(ann.cuda(), volatile=True) for ann in anns]
        labels = Variable(anns[0], volatile=True).cuda()
        gt = Variable(torch.stack(anns), volatile=True)
        wrapped = Variable(anns.labels, volatile=True)
        print(criterion(net(images), targets, labels, gt, wrapped).item())
"""


def test_the_flag_on_labels_is_silent_and_on_the_inputs_reported():
    assert found(DIRECT) == [(8, 41)]


@pytest.mark.parametrize("name", ["outputs", "features", "y_hat"])
def test_a_name_not_of_labels_is_reported(name):
    source = DIRECT.replace("targets = [Variable(ann.cuda()", f"{name} = [Variable(a.cuda()").replace(
        "for ann in anns]", "for a in anns]"
    ).replace("net(images), targets,", f"net(images), {name},")
    assert found(source) == [(8, 41), (9, 31 + len(name))]


FORWARDED = """
from torch.autograd import Variable


def get_batch(source, i, volatile=False):
    data = Variable(source[i:i + 35], volatile=volatile)
    target = Variable(source[i + 1:i + 36].view(-1), volatile=volatile)
    return data, target


def evaluate(model, source):
    for i in range(0, len(source) - 1, 35):
        data, target = get_batch(source, i, volatile=True)
        model(data)
"""


def test_a_helper_handing_the_flag_to_inputs_and_labels_is_reported_for_the_inputs():
    # the helper's label Variable is silent; the inputs' flag and the caller's
    # keyword that reaches it are reported
    assert found(FORWARDED) == [(6, 38), (13, 44)]


def test_labels_under_real_torch_carry_no_graph_with_the_flag_or_without():
    torch = pytest.importorskip("torch")
    from torch.autograd import Variable

    model = torch.nn.Linear(4, 2)
    with pytest.warns(UserWarning, match="volatile was removed"):
        target = Variable(torch.randn(3, 2), volatile=True)
    loss = torch.nn.functional.mse_loss(model(torch.randn(3, 4)), target)
    loss.backward()
    assert not target.requires_grad and model.weight.grad is not None


@pytest.mark.parametrize("line", [
    "input_label = Variable(input_label, volatile=infer)",  # pix2pix: the label map is the generator's input
    "tgt_emb = Variable(tgt_ids, volatile=infer)",  # translation: the target side is an input
])
def test_a_label_map_fed_to_the_model_is_an_input(line):
    source = f"""
import torch
from torch.autograd import Variable


def forward(netG, input_label, tgt_ids, infer=False):
    {line}
    return netG(input_label)
"""
    assert found(source) == [(7, 4 + line.index("volatile"))]


FROZEN_AND_VOLATILE = """
import torch


def load(reg_model):
    for param in reg_model.parameters():
        param.requires_grad = False
        param.volatile = True
    return reg_model
"""


@pytest.mark.parametrize("freeze", ["param.requires_grad = False", "param.requires_grad_(False)"])
def test_the_flag_beside_a_freeze_of_the_same_parameter_is_silent(freeze):
    assert found(FROZEN_AND_VOLATILE.replace("param.requires_grad = False", freeze)) == []


@pytest.mark.parametrize("other", ["param.requires_grad = True", "other.requires_grad = False", "pass"])
def test_the_flag_without_that_freeze_is_reported(other):
    assert found(FROZEN_AND_VOLATILE.replace("param.requires_grad = False", other)) == [(8, 8)]
