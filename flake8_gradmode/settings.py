"""Options, as one frozen value built from flake8's option namespace."""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Callable, Tuple


def comma_list(value: Any) -> Tuple[str, ...]:
    """``"a, b,c"`` (or a list from the config parser) -> ``("a", "b", "c")``."""
    if value is None:
        return ()
    if isinstance(value, str):
        items = value.replace("\n", ",").split(",")
    else:
        items = [str(v) for v in value]
    return tuple(item.strip() for item in items if item.strip())


def one_path(value: Any) -> str:
    """A directory given once: ``"src/"`` -> ``"src/"``; nothing -> ``""``."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    return str(value).strip()


_YES = ("yes", "true", "on", "1")
_NO = ("no", "false", "off", "0")


def yes_no(value: Any) -> bool:
    """``yes``/``no`` (also true/false, on/off, 1/0); nothing means yes."""
    if value is None or isinstance(value, bool):
        return value is not False
    text = str(value).strip().lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    import argparse  # only to word the error; flake8 and the command use it anyway

    raise argparse.ArgumentTypeError(f"expected yes or no, got {value!r}")


def no_yes(value: Any) -> bool:
    """``yes``/``no`` as ``yes_no`` reads them, but nothing means no."""
    return False if value is None else yes_no(value)


class Option:
    """How one setting appears on the command line and in config files."""

    __slots__ = ("flag", "metavar", "help", "example", "parse")

    def __init__(
        self, flag: str, metavar: str, help: str, example: str, parse: Callable[[Any], Any] = comma_list
    ) -> None:
        self.flag = flag
        self.metavar = metavar
        self.help = help
        self.example = example
        #: turns the text of the flag or the config value into the setting
        self.parse = parse


# Settings is a tuple (a caller may compare, hash or unpack it; the command
# pickles it to its workers), made by collections.namedtuple: a typing.NamedTuple
# class costs about twice as much to create at import.  The fields:
# no_grad_decorators, model_names, eval_names, eval_mode_helpers: Tuple[str, ...];
# project_root: str; cross_module, current_torch: bool.
_SettingsTuple = namedtuple(
    "Settings",
    ("no_grad_decorators", "model_names", "eval_names", "eval_mode_helpers", "project_root", "cross_module",
     "current_torch"),
    defaults=((), (), (), (), "", True, False),
)


class Settings(_SettingsTuple):
    __slots__ = ()

    @classmethod
    def from_options(cls, options: Any) -> "Settings":
        return cls(**{name: OPTIONS[name].parse(getattr(options, f"gradmode_{name}", None)) for name in cls._fields})


#: Every registered option; the docs' configuration page is rendered from this.
OPTIONS = {
    "no_grad_decorators": Option(
        flag="--gradmode-no-grad-decorators",
        metavar="NAMES",
        help=(
            "Comma-separated names of the project's own decorators and context "
            "managers that disable grad (for example a `nograd` helper that wraps "
            "`torch.no_grad()`). A dotted name matches the resolved import path or "
            "the name as written; a plain name also matches the last part of a "
            "dotted one."
        ),
        example="utils.nograd, frozen_eval",
    ),
    "model_names": Option(
        flag="--gradmode-model-names",
        metavar="NAMES",
        help=(
            "Comma-separated extra names that hold a model, matched against the "
            "last part of the called name (`self.scorer(x)` with `scorer`). Added "
            "to the built-in names: model, net, network, encoder, decoder, "
            "generator, discriminator, classifier, backbone, policy, actor, critic, "
            "teacher, student, autoencoder, and names ending in `model` or `net`."
        ),
        example="scorer, ranker",
    ),
    "eval_names": Option(
        flag="--gradmode-eval-names",
        metavar="WORDS",
        help=(
            "Comma-separated extra words that mark evaluation: in the name of the "
            "iterated data (`holdout_loader` with `holdout`) or of the enclosing "
            "function. Added to val, valid, validation, test, eval, evaluate, dev, "
            "predict, infer, inference and generate."
        ),
        example="holdout, benchmark",
    ),
    "eval_mode_helpers": Option(
        flag="--gradmode-eval-mode-helpers",
        metavar="NAMES",
        help=(
            "Comma-separated names of the project's functions that put models in "
            "eval mode (a call to one counts like `model.eval()`)."
        ),
        example="val_start, freeze_for_eval",
    ),
    "project_root": Option(
        flag="--gradmode-project-root",
        metavar="DIR",
        help=(
            "The root directory of the project whose modules are analysed together "
            "(callers in other modules, base classes, see docs/cross-module.md). "
            "By default the nearest directory above the linted file that holds "
            "pyproject.toml, setup.cfg, setup.py or .git."
        ),
        example=".",
        parse=one_path,
    ),
    "cross_module": Option(
        flag="--gradmode-cross-module",
        metavar="YES|NO",
        help=(
            "`no` turns off the analysis across the project's modules: each file "
            "is analysed alone, as if it were the whole program, and no cache is "
            "read or written."
        ),
        example="no",
        parse=yes_no,
    ),
    "current_torch": Option(
        flag="--gradmode-current-torch",
        metavar="YES|NO",
        help=(
            "`yes` says that every linted module runs on a current PyTorch (0.4 or "
            "later), also one written for 0.3: GRD003 then reports `volatile=` in "
            "every module, not only in one that calls an API PyTorch 0.4 added "
            "(`.item()`, `.to(...)`, `torch.device`) or in a project that names only "
            "releases from 0.4 on, and GRD101 no longer takes `volatile=True` inputs "
            "for a guard. Turn it on while porting old code."
        ),
        example="yes",
        parse=no_yes,
    ),
}
