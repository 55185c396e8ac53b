"""The shared grad-context tracker, import resolution and caller resolution.

A probe rule records the grad state at every ``probe("label")`` call; the
state is resolved through module-local callers after the traversal, exactly as
rules see it.
"""

import ast
import textwrap

import pytest

from flake8_gradmode.tracker import Grad, effective
from flake8_gradmode.engine import check
from flake8_gradmode.rule import Rule
from flake8_gradmode.settings import Settings


class Probe(Rule):
    code = "GRD999"
    triggers = ("probe",)
    seen = []

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id == "probe":
            label = node.args[0].value
            state, function = self.context.grad_here()
            Probe.seen.append((label, state, function))


def states(source, settings=Settings()):
    Probe.seen = []
    assert check(textwrap.dedent(source), settings, rules=[Probe]) == []
    return {label: effective(state, fn).value for label, state, fn in Probe.seen}


def test_module_level_is_enabled():
    assert states('probe("a")') == {"a": "enabled"}


@pytest.mark.parametrize(
    "imports, ctx",
    [
        ("import torch", "torch.no_grad()"),
        ("import torch as t", "t.no_grad()"),
        ("from torch import no_grad", "no_grad()"),
        ("from torch import no_grad as ng", "ng()"),
        ("import torch", "torch.autograd.no_grad()"),
        ("import torch", "torch.torch.no_grad()"),  # the torch module is its own attribute
        ("from torch.autograd import grad_mode", "grad_mode.no_grad()"),
        ("import torch.autograd.grad_mode as gm", "gm.no_grad()"),
        ("from torch.autograd.grad_mode import no_grad", "no_grad()"),
        ("import torch", "torch.inference_mode()"),
        ("import torch", "torch.inference_mode(True)"),
        ("import torch", "torch.inference_mode(mode=True)"),
        ("import torch", "torch.set_grad_enabled(False)"),
        ("import torch", "torch.set_grad_enabled(mode=False)"),
        ("from torch import set_grad_enabled as sge", "sge(False)"),
    ],
)
def test_disabling_contexts_through_any_import(imports, ctx):
    src = f"""
    {imports}
    with {ctx}:
        probe("in")
    probe("out")
    """
    assert states(src) == {"in": "disabled", "out": "enabled"}


@pytest.mark.parametrize(
    "binding, state",
    [
        ("evaluation_mode = torch.no_grad", "disabled"),
        ("evaluation_mode = torch.inference_mode", "disabled"),
        # one of two grad-mode callables, chosen at run time: off either way
        ("if compiled:\n        evaluation_mode = torch.no_grad\n    else:\n"
         "        evaluation_mode = torch.inference_mode", "disabled"),
        # bound to something else in the other branch: not known to be off
        ("if compiled:\n        evaluation_mode = torch.no_grad\n    else:\n"
         "        evaluation_mode = contextlib.nullcontext", None),
        ("evaluation_mode = torch.no_grad\n    evaluation_mode = contextlib.nullcontext", None),
    ],
)
def test_a_name_bound_to_a_grad_mode_callable_works_like_it(binding, state):
    src = f"""
    import contextlib
    import torch
    compiled = True

    {binding}

    @evaluation_mode()
    def evaluate():
        probe("in")

    with evaluation_mode():
        probe("with")
    """
    # not known: a function nothing calls inherits its callers' mode
    assert states(src) == ({"in": state, "with": state} if state else {"in": "inherited", "with": "enabled"})


def test_local_name_shadowing_torch_api_is_not_torch():
    src = """
    from .utils import no_grad
    with no_grad:
        probe("in")
    """
    # Not torch's class, so no GRD001; named like a wrapper, so grad is off.
    assert states(src) == {"in": "disabled"}
    assert check(textwrap.dedent(src)) == []


def test_nesting_and_reenabling():
    src = """
    import torch
    with torch.no_grad():
        probe("a")
        with torch.enable_grad():
            probe("b")
            with torch.inference_mode():
                probe("c")
            probe("d")
        with torch.inference_mode(False):
            probe("e")
        with torch.set_grad_enabled(True):
            probe("f")
        probe("g")
    """
    assert states(src) == {
        "a": "disabled",
        "b": "enabled",
        "c": "disabled",
        "d": "enabled",
        "e": "enabled",
        "f": "enabled",
        "g": "disabled",
    }


def test_several_items_last_wins():
    src = """
    import torch
    with open("f") as fh, torch.no_grad():
        probe("a")
    with torch.no_grad(), torch.enable_grad():
        probe("b")
    """
    assert states(src) == {"a": "disabled", "b": "enabled"}


def test_context_expression_runs_outside_the_context():
    src = """
    import torch
    with torch.no_grad() if probe("expr") else torch.no_grad():
        pass
    """
    assert states(src) == {"expr": "enabled"}


def test_runtime_dependent_mode_is_unknown():
    src = """
    import torch
    with torch.set_grad_enabled(phase == "train"):
        probe("a")
    with torch.inference_mode(flag):
        probe("b")
    """
    assert states(src) == {"a": "unknown", "b": "unknown"}


@pytest.mark.parametrize(
    "decorator, expected",
    [
        ("@torch.no_grad()", "disabled"),
        ("@torch.no_grad", "disabled"),
        ("@torch.inference_mode()", "disabled"),
        ("@torch.inference_mode", "disabled"),
        ("@torch.enable_grad()", "enabled"),
        ("@torch.set_grad_enabled(False)", "disabled"),
        ("@functools.lru_cache()", "inherited"),
    ],
)
def test_decorators_set_the_body_state(decorator, expected):
    src = f"""
    import functools
    import torch
    {decorator}
    def f():
        probe("body")
    """
    assert states(src) == {"body": expected}


def test_innermost_decorator_wins():
    src = """
    import torch
    @torch.no_grad()
    @torch.enable_grad()
    def f():
        probe("body")
    """
    assert states(src) == {"body": "enabled"}


def test_imperative_set_grad_enabled_holds_past_its_block():
    src = """
    import torch
    def f():
        probe("before")
        torch.set_grad_enabled(False)
        probe("after")
        if x:
            torch.set_grad_enabled(True)
            probe("inner")
        probe("after-if")
    probe("module")
    torch.set_grad_enabled(False)
    probe("module-after")
    """
    got = states(src)
    assert got["after"] == "disabled"
    assert got["inner"] == "enabled"
    # process state: the ``if`` may or may not have turned grad back on
    assert got["after-if"] == "unknown"
    assert got["module"] == "enabled"
    assert got["module-after"] == "disabled"
    assert got["before"] == "inherited"


@pytest.mark.parametrize(
    "block, after",
    [
        # a grad context puts back the mode it found
        ("with torch.no_grad():\n    torch.set_grad_enabled(True)", "disabled"),
        # another ``with`` does not
        ("with open(path):\n    torch.set_grad_enabled(True)", "unknown"),
        ("for x in xs:\n    torch.set_grad_enabled(x)", "unknown"),
        ("try:\n    run()\nfinally:\n    torch.set_grad_enabled(True)", "unknown"),
        ("try:\n    run()\nexcept ValueError:\n    torch.set_grad_enabled(True)", "unknown"),
        ("if a:\n    if b:\n        torch.set_grad_enabled(True)", "unknown"),
        # the same mode it began in: nothing changes
        ("if a:\n    torch.set_grad_enabled(False)", "disabled"),
        ("if a:\n    run()", "disabled"),
    ],
)
def test_set_grad_enabled_in_a_block_leaves_its_mode_behind(block, after):
    src = "import torch\ndef f():\n    torch.set_grad_enabled(False)\n"
    src += textwrap.indent(block, "    ") + '\n    probe("after")\n'
    assert states(src)["after"] == after


def test_nested_def_lambda_and_generator_run_later():
    src = """
    import torch
    with torch.no_grad():
        def inner():
            probe("def")
        fn = lambda: probe("lambda")
        gen = (probe("genexp") for _ in range(3))
        lst = [probe("listcomp") for _ in range(3)]
    """
    assert states(src) == {
        "def": "inherited",
        "lambda": "inherited",
        "genexp": "inherited",
        "listcomp": "disabled",
    }


def test_function_whose_every_caller_disables_grad():
    src = """
    import torch
    def helper():
        probe("helper")
    def middle():
        helper()
    with torch.no_grad():
        helper()
        middle()
    """
    assert states(src) == {"helper": "disabled"}


def test_one_enabled_caller_means_enabled():
    src = """
    import torch
    def helper():
        probe("helper")
    with torch.no_grad():
        helper()
    helper()
    """
    assert states(src) == {"helper": "enabled"}


@pytest.mark.parametrize(
    "escape",
    [
        "callbacks = [helper]",
        "pool.map(helper, items)",
        "def helper(): pass",
        "",  # no caller at all
    ],
)
def test_unknown_callers_stay_inherited(escape):
    src = f"""
    import torch
    def helper():
        probe("helper")
    {escape}
    """
    if escape:
        src += """
    with torch.no_grad():
        helper()
    """
    got = states(textwrap.dedent(src))
    assert got["helper"] == "inherited"


def test_methods_called_through_self():
    src = """
    import torch
    class Evaluator:
        def run(self):
            with torch.no_grad():
                self.step()
        def step(self):
            probe("step")
        def other(self):
            probe("other")
    """
    assert states(src) == {"step": "disabled", "other": "inherited"}


def test_super_reaches_the_base_class_method_only():
    # super().step() in Child runs Base.step under no_grad; Other.step, a
    # method of the same name in an unrelated class, is not called at all
    src = """
    import torch
    class Base:
        def step(self):
            probe("base")
    class Middle(Base):
        pass
    class Child(Middle):
        def step(self):
            with torch.no_grad():
                super().step()
    class Other:
        def step(self):
            probe("other")
    """
    assert states(src) == {"base": "disabled", "other": "inherited"}


def test_super_outside_a_method_reaches_nothing():
    src = """
    import torch
    class Base:
        def step(self):
            probe("base")
    def free():
        with torch.no_grad():
            super().step()
    """
    assert states(src) == {"base": "inherited"}


def test_recursion_does_not_loop():
    src = """
    import torch
    def a():
        probe("a")
        b()
    def b():
        a()
    with torch.no_grad():
        a()
    """
    assert states(src)["a"] in ("disabled", "inherited")


def test_user_declared_decorators_and_contexts():
    src = """
    from mylib.utils import frozen
    @frozen
    def f():
        probe("deco")
    with frozen():
        probe("ctx")
    """
    assert states(src) == {"deco": "inherited", "ctx": "enabled"}
    settings = Settings(no_grad_decorators=("frozen",))
    assert states(src, settings) == {"deco": "disabled", "ctx": "disabled"}
    dotted = Settings(no_grad_decorators=("mylib.utils.frozen",))
    assert states(src, dotted) == {"deco": "disabled", "ctx": "disabled"}


@pytest.mark.parametrize("name", ["smart_inference_mode()", "_get_no_grad_ctx_mgr()", "utils.nograd", "disable_grad()"])
def test_project_wrappers_recognised_by_name(name):
    src = f"""
    import utils
    @{name}
    def f():
        probe("deco")
    """
    assert states(src) == {"deco": "disabled"}


def test_exit_stack_enter_context():
    src = """
    import contextlib
    import torch
    with contextlib.ExitStack() as stack:
        probe("before")
        stack.enter_context(torch.no_grad())
        probe("after")
    probe("outside")
    """
    assert states(src) == {"before": "enabled", "after": "disabled", "outside": "enabled"}


def test_grad_enum_values_are_stable():
    assert {g.value for g in Grad} == {"enabled", "disabled", "unknown", "inherited"}


@pytest.mark.parametrize(
    "text",
    [
        "def f(x):\n    pass\n",
        "undef def foo\n",  # ``def`` inside a word: looked for again from the next character
        "xdef def a\n",
        "_def a; def b\n",
        "\u00e9def x\ndef y\n",  # a word character outside ASCII
        "def\\\n  spaced(x): pass\n",
        "async def run(): pass\nclass A:\n    def  forward(self): pass\n",
        "def",
        "adef",
        "",
    ],
)
def test_def_names_are_what_a_word_bounded_pattern_finds(text):
    """``Context.defines`` reads the names of ``def`` statements from the text
    with a pattern that starts with the literal ``def`` (a leading ``\\b``
    makes the search try every position); it must find what the
    word-bounded pattern finds."""
    import re

    from flake8_gradmode.context import _def_names

    assert _def_names(text) == re.findall(r"\bdef[\s\\]+(\w+)", text)


def test_preorder_meets_every_node_ast_walk_meets_each_before_its_children():
    """``tracker.preorder`` stands in for ``ast.walk`` where the order does
    not matter but a parent must come before its children (a dict display
    before its string keys)."""
    from flake8_gradmode.tracker import preorder

    source = textwrap.dedent(
        """
        import torch as t
        class Net(t.nn.Module):
            def forward(self, x, *a, k=1, **kw):
                y = {"a": x[0], **kw}
                return [v async for v in y] if k else (lambda z: z)(y["a"])
        try:
            pass
        except (ValueError, KeyError) as e:
            raise e from None
        """
    )
    tree = ast.parse(source)
    found = preorder(tree)
    assert sorted(map(id, found)) == sorted(map(id, ast.walk(tree)))
    shared = (ast.expr_context, ast.operator, ast.cmpop, ast.boolop, ast.unaryop)  # one node, many parents
    own = [node for node in found if not isinstance(node, shared)]
    assert len(own) == len(set(map(id, own)))  # no node twice
    position = {id(node): i for i, node in enumerate(found)}
    for node in own:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, shared):
                assert position[id(node)] < position[id(child)]
