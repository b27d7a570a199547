"""Command-line options from config dataclasses, parsed by tyro (the typed-dataclass CLI of
the JAX RL ecosystem: CleanRL, PureJaxRL's successors).

Every field of an algorithm's configs is one option ``--field-name VALUE``; its ``# comment`` is
the help line; the type comes from the annotation (``int``, ``float | None``,
``tuple[int, ...]`` as ``--hidden 64 64`` or ``--hidden 64,64``, ``bool`` as ``--x True``; case
and ``1/0/yes/no`` are accepted). The defaults shown are the chosen preset's. A bad value or
an unknown option raises :class:`ppo_jax.runner.UsageError` with one line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from ppo_jax.registry import Algorithm, Configs
from ppo_jax.runner import UsageError

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def parse(
    algo: Algorithm,
    argv: Sequence[str],
    *,
    preset: str = "default",
    env_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
    prog: str | None = None,
) -> tuple[dict[str, Any], Configs]:
    """Parse ``argv`` into ``(extra values, configs)``.

    ``extra``: option groups besides the algorithm's configs (name -> a dataclass instance
    holding their defaults, e.g. train.py's run options). ``configs`` are the preset's with the
    fields given on the command line applied by the preset itself (so a preset may depend on
    them, e.g. the paper settings of a ``--method``). ``--help`` prints every option and exits.
    """
    import tyro

    extra = dict(extra or {})
    try:
        base = algo.make_configs(preset, env_id, {})
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    keep_values = tyro.conf.FlagConversionOff  # config booleans take a value, as in config.json
    fields = [(name, type(value), dataclasses.field(default=value)) for name, value in extra.items()]
    fields += [(name, Annotated[type(cfg), keep_values], dataclasses.field(default=cfg)) for name, cfg in base.items()]
    options = dataclasses.make_dataclass("Options", fields, frozen=True)
    presets = ", ".join(algo.preset_names)
    options.__doc__ = (f"--algo {algo.name}: {algo.summary}. Default env {algo.default_env}. "
                       f"Presets (--preset): {presets}; options below show the {preset!r} preset's values.")
    args = _normalise(list(argv), algo)
    parsed = _run_tyro(lambda: tyro.cli(options, args=args, prog=prog, config=(tyro.conf.OmitArgPrefixes,)))
    given = _given_fields(args, algo)
    overrides = {name: {f: getattr(getattr(parsed, name), f) for f in given.get(name, ())} for name in base}
    try:
        configs = algo.make_configs(preset, env_id, overrides)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    return {name: getattr(parsed, name) for name in extra}, configs


def _run_tyro(call):
    """``call()`` with tyro's error box turned into one ``UsageError`` line (help still prints)."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return call()
    except SystemExit as e:
        if e.code in (0, None):
            raise
        raise UsageError(_one_line(err.getvalue())) from None


def _one_line(box: str) -> str:
    """The message of tyro's error box: its title and first paragraph, on one line."""
    lines = [line.strip(" │╭╮╰╯") for line in box.splitlines()]
    title = lines[0].strip("─ ") if lines else "error"
    body = []
    for line in lines[1:]:
        if not line or set(line) <= set("─ "):
            if body:
                break
            continue
        body.append(line.strip())
    text = " ".join(body)
    if not text:
        return title or "bad command line"
    return text if text.lower().startswith(title.lower()) else f"{title}: {text}"


def _hints(algo: Algorithm) -> dict[str, Any]:
    """Field name -> resolved type annotation, over all of the algorithm's configs."""
    hints: dict[str, Any] = {}
    for cls in algo.configs.values():
        hints.update(typing.get_type_hints(cls))
    return hints


def _kinds(annotation) -> set:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_kinds(a) for a in typing.get_args(annotation)))
    return {origin or annotation}


def _normalise(argv: list[str], algo: Algorithm) -> list[str]:
    """Accept ``true``/``1``/``yes`` for booleans, ``none`` for None, ``64,64`` for tuples and
    ``--name=value``, as tyro's ``--name value``."""
    hints, owner = _hints(algo), algo.field_owner()
    out: list[str] = []
    field = None
    for token in argv:
        if token.startswith("--"):
            name, eq, token = token.partition("=")
            key = name[2:].replace("-", "_")
            field = key if key in owner else None
            out.append(name)
            if not eq:
                continue
        out += _values(token, hints[field]) if field else [token]
    return out


def _values(token: str, annotation) -> list[str]:
    kinds = _kinds(annotation)
    if token.lower() == "none" and type(None) in kinds:
        return ["None"]
    if bool in kinds and token.lower() in _TRUE + _FALSE:
        return ["True" if token.lower() in _TRUE else "False"]
    if tuple in kinds and "," in token:
        return [t for t in token.split(",") if t]
    return [token]


def _given_fields(argv: Sequence[str], algo: Algorithm) -> dict[str, set[str]]:
    """Config name -> the fields named on the command line."""
    owner = algo.field_owner()
    given: dict[str, set[str]] = {}
    for token in argv:
        if token.startswith("--"):
            field = token[2:].partition("=")[0].replace("-", "_")
            if field in owner:
                given.setdefault(owner[field], set()).add(field)
    return given
