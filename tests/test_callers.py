"""Caller resolution inside one module: nested defs are reached by the calls
Python's scoping sends to them, so a closure called only under ``no_grad``
runs without grad."""

from __future__ import annotations

import textwrap

from flake8_gradmode.engine import check
from flake8_gradmode.registry import RULES

NESTED = """
    import torch


    {decorator}
    def test(model, loaders):
        def test_split(loader):
            preds = []
            for x in loader:
                preds.append(model(x))
            return preds

        {use}
"""


def findings(code: str):
    found = check(textwrap.dedent(code).lstrip("\n"), rules=[r for r in RULES if r.default_on])
    return [(v.line, v.col, v.code) for v in found]


def test_closure_called_only_inside_a_no_grad_function_is_silent():
    use = 'return test_split(loaders["valid"]), test_split(loaders["test"])'
    code = NESTED.format(decorator="@torch.no_grad()", use=use)
    assert findings(code) == []


def test_closure_of_a_function_with_grad_is_reported():
    code = NESTED.format(decorator="", use='return test_split(loaders["valid"])')
    assert findings(code) == [(8, 8, "GRD101")]


def test_closure_that_escapes_has_unknown_callers():
    code = NESTED.format(decorator="@torch.no_grad()", use="return test_split")
    assert findings(code) == [(8, 8, "GRD101")]


def test_sibling_closures_calling_each_other_in_any_order():
    code = """
        import torch


        def main(model, val_loader):
            def run():
                with torch.no_grad():
                    return evaluate()

            def evaluate():
                for x in val_loader:
                    model(x)

            return run()
    """
    assert findings(code) == []
    assert findings(code.replace("with torch.no_grad():", "if True:")) == [(10, 8, "GRD101")]


def test_closure_shadows_a_module_function_of_the_same_name():
    code = """
        import torch


        def evaluate(model, val_loader):
            for x in val_loader:
                model(x)


        def main(model, val_loader):
            def evaluate():
                return None

            with torch.no_grad():
                evaluate()
    """
    assert findings(code) == [(5, 4, "GRD101")]


RECURSIVE = """
    import torch


    def init_tree(module):
        for child in module.children():
            if hasattr(child, "weight"):
                child.weight.fill_(0.5)
            init_tree(child)


    def build(model):
        {call}
        return model
"""


def test_a_function_calling_itself_runs_as_its_other_callers_run_it():
    code = RECURSIVE.format(call="with torch.no_grad():\n            init_tree(model)")
    assert findings(code) == []


def test_a_recursive_function_with_one_caller_with_grad_is_reported():
    assert findings(RECURSIVE.format(call="init_tree(model)")) == [(7, 12, "GRD004")]


EVALUATOR = """
    import torch


    class Evaluator:
        def __init__(self, model, data):
            self.model = model
            self.data = data

        def run(self):
            with torch.no_grad():
                return {split: self.eval(split) for split in ("valid", "test")}

        def eval(self, split):
            self.model.eval()
            preds = []
            for x in self.data[split]:
                preds.append(self.model(x).argmax(1))
            return torch.cat(preds).cpu().numpy()
"""


def test_a_method_named_like_a_module_method_is_still_resolved_through_its_callers():
    # ``self.model.eval()`` calls the model's eval, maybe this one: it adds nothing
    assert findings(EVALUATOR) == []


def test_a_call_by_name_on_another_object_never_settles_grad_off():
    code = """
        import torch


        class Stats:
            def update(self, x):
                self.mean = x.mean()


        class Critic:
            def __init__(self, net, opt):
                self.net, self.opt, self.stats = net, opt, Stats()

            def update(self, batch):
                loss = self.net(batch).pow(2).mean()
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()

            def reward(self, batch):
                with torch.no_grad():
                    r = self.net(batch)
                    self.stats.update(r)
                return r
    """
    assert findings(code) == []


def test_a_call_by_name_with_grad_keeps_the_method_reported():
    code = EVALUATOR + """

    def report(evaluator):
        return evaluator.eval("test")
    """
    assert findings(code) == [(16, 8, "GRD101")]
