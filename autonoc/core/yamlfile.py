"""Where in a YAML file a validation error points: the line of a node by its path."""

from __future__ import annotations

import yaml

__all__ = ["node_line", "text_line"]


def node_line(node: yaml.Node | None, loc: tuple[object, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (pydantic's error location).

    As deep as it can be found: a location part that is not in the document
    (a missing key, a discriminator tag) leaves the line of its parent.
    """
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if getattr(k, "value", None) == part]
            if not match:
                continue  # a key that is not there, or a union's tag: stay on this node
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
        else:
            continue
        line = node.start_mark.line + 1
    return line


def text_line(text: str, loc: tuple[object, ...]) -> int | None:
    """:func:`node_line` on a document's text; None when it does not parse."""
    try:
        return node_line(yaml.compose(text), loc)
    except yaml.YAMLError:
        return None
