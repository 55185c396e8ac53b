"""A tiny evaluation script with four grad-mode bugs for flake8-gradmode to find.

    flake8 --select=GRD examples/
"""
import torch
from torch.autograd import Variable

model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 2))
batches = [torch.randn(4, 8) for _ in range(3)]


def evaluate():
    model.eval
    with torch.no_grad:
        return [model(x).argmax(1) for x in batches]


def evaluate_legacy():
    return [model(Variable(x, volatile=True)).sum().item() for x in batches]


def init_weights(m):
    if isinstance(m, torch.nn.Linear):
        m.bias.fill_(0.0)


model.apply(init_weights)
