"""HTML built from escaped text: every value goes through `html.escape` unless it is already `Html` (markup
this package built), so a customer named `<script>...` is text on the page, never markup."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape


class Html(str):
    """Markup that is already safe: built by `tag` / `join` from escaped parts."""

    __slots__ = ()


def text(value: object) -> Html:
    return value if isinstance(value, Html) else Html(escape(str(value), quote=True))


def attributes(attrs: dict[str, object]) -> str:
    """`class_` is written `class`, `data_x` is `data-x`; None leaves the attribute out."""
    parts = []
    for name, value in attrs.items():
        if value is None:
            continue
        written = name.rstrip("_").replace("_", "-")
        parts.append(f' {written}="{escape(str(value), quote=True)}"')
    return "".join(parts)


def tag(name: str, *children: object, **attrs: object) -> Html:
    return Html(f"<{name}{attributes(attrs)}>{join(children)}</{name}>")


def void(name: str, **attrs: object) -> Html:
    return Html(f"<{name}{attributes(attrs)}/>")


def join(children: Iterable[object]) -> Html:
    return Html("".join(text(child) for child in children))
