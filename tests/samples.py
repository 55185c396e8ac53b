"""Source texts shared by the command and fixer tests."""

# Every fixable finding once, plus one without a fix (GRD004, line 28).
BUGGY = '''\
"""Evaluation helpers."""
import torch
from torch.autograd import Variable

model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.5))


def evaluate(batches):
    model.eval
    with torch.no_grad:
        return [model(x) for x in batches]


def legacy(x):
    return model(Variable(x, volatile=True))


@torch.set_grad_enabled
def trained(x):
    return model(x)


def wrap(x):
    return Variable(x)


def init():
    model[0].bias.fill_(0.0)
'''
