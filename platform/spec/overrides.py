"""``--set key.path=value``: the one parser for every command that takes settings on the command line.

``mritune search``/``submit``/``resume`` apply them to a spec (``config.apply_overrides``), ``mritune train`` to a
task's config (``cli.train``). A value is read as a YAML scalar or flow collection (``2`` is an int, ``1e-3`` a
float, ``true`` a bool, ``[16, 32]`` a list, nothing at all null); a dotted key reaches into nested sections. A
malformed setting or a value that is not valid YAML is a ``UserInputError`` whose one line names the setting.
"""

from __future__ import annotations

from typing import Any

from mritune.trainables.errors import UserInputError


def parse_setting(item: str, *, example: str = "search.num_samples=4") -> tuple[tuple[str, ...], Any]:
    """``"search.num_samples=4"`` -> ``(("search", "num_samples"), 4)``.

    Args:
        item: one ``--set`` argument, ``key.path=value``.
        example: a valid setting for the command, shown in the error.

    Raises:
        UserInputError: no ``=``, an empty key or key part, or a value that is not valid YAML.

    Example:
        >>> parse_setting("optimizer.lr=1e-3")
        (('optimizer', 'lr'), 0.001)
    """
    import yaml

    key, sep, text = item.partition("=")
    parts = tuple(part.strip() for part in key.split("."))
    if not sep or not all(parts):
        raise UserInputError(f"--set {item!r}: expected key.path=value, e.g. --set {example}")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        problem = str(getattr(exc, "problem", None) or "not valid YAML")
        raise UserInputError(f"--set {item!r}: the value is not valid YAML ({problem}); quote text, "
                             f"e.g. --set '{key.strip()}=\"...\"'") from None
    return parts, value


def apply_settings(tree: dict[str, Any], items: list[str] | tuple[str, ...], *,
                   example: str = "search.num_samples=4") -> dict[str, Any]:
    """``tree`` with each ``--set`` applied in order (a later one wins); returns a new dict, ``tree`` is kept.

    Raises:
        UserInputError: a setting ``parse_setting`` refuses, or a dotted key through a value that is not a section.
    """
    result = _deep_copy(tree)
    for item in items:
        parts, value = parse_setting(item, example=example)
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UserInputError(f"--set {'.'.join(parts)}: {'.'.join(parts[:depth + 1])!r} holds a value, "
                                     "not a section")
            node = child
        node[parts[-1]] = value
    return result


def setting_keys(items: list[str] | tuple[str, ...]) -> list[str]:
    """The dotted keys the settings set, in order (``parse_setting`` must have accepted them)."""
    return [".".join(part.strip() for part in item.partition("=")[0].split(".")) for item in items]


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
