"""The explicit list of rules, in code order, and the codes off by default."""

from __future__ import annotations

from typing import Tuple, Type

from flake8_gradmode.rule import Rule
from flake8_gradmode.rules.grd001_grad_mode_class_as_context import GradModeClassAsContext
from flake8_gradmode.rules.grd002_mode_switch_not_called import ModeSwitchNotCalled
from flake8_gradmode.rules.grd003_volatile_flag import VolatileFlag
from flake8_gradmode.rules.grd004_inplace_param_update_with_grad import InplaceParamUpdateWithGrad
from flake8_gradmode.rules.grd005_backward_under_no_grad import BackwardUnderNoGrad
from flake8_gradmode.rules.grd006_numpy_on_tensor_requiring_grad import NumpyOnTensorRequiringGrad
from flake8_gradmode.rules.grd101_eval_loop_without_no_grad import EvalLoopWithoutNoGrad
from flake8_gradmode.rules.grd102_eval_loop_without_eval_mode import EvalLoopWithoutEvalMode
from flake8_gradmode.rules.grd103_train_mode_not_restored import TrainModeNotRestored
from flake8_gradmode.rules.grd104_loss_accumulated_with_graph import LossAccumulatedWithGraph
from flake8_gradmode.rules.grd105_no_grad_not_inherited_by_threads import NoGradNotInheritedByThreads
from flake8_gradmode.rules.grd901_param_data_mutation import ParamDataMutation
from flake8_gradmode.rules.grd902_variable_wrapper import VariableWrapper
from flake8_gradmode.rules.grd903_no_grad_where_inference_mode_fits import NoGradWhereInferenceModeFits

RULES: Tuple[Type[Rule], ...] = (
    GradModeClassAsContext,
    ModeSwitchNotCalled,
    VolatileFlag,
    InplaceParamUpdateWithGrad,
    BackwardUnderNoGrad,
    NumpyOnTensorRequiringGrad,
    EvalLoopWithoutNoGrad,
    EvalLoopWithoutEvalMode,
    TrainModeNotRestored,
    LossAccumulatedWithGraph,
    NoGradNotInheritedByThreads,
    ParamDataMutation,
    VariableWrapper,
    NoGradWhereInferenceModeFits,
)

#: Code prefixes flake8 ignores unless the user selects them (opinionated hints).
DEFAULT_IGNORE: Tuple[str, ...] = ("GRD9",)


def by_code(code: str) -> Type[Rule]:
    for rule in RULES:
        if rule.code == code:
            return rule
    raise KeyError(code)
