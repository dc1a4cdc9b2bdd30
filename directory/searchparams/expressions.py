"""A SearchParameter's FHIRPath expression, split per base type and compiled once.

Each `|` term of an expression becomes one `Term`. A plain path (`Organization.address.city`,
or `name` relative to the resource) whose every step has a known, non-choice type is read by a
direct accessor: about a hundred times cheaper than evaluating FHIRPath. Everything else
(`extension.where(url=...)`, `as`, `ofType`, `resolve()`, ...) is evaluated by fhirpathpy,
compiled once. Both yield (type name, element) pairs; tests prove they agree on every term.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode

from ..errors import InvalidResource
from ..references import restful_key
from .model import R4, child_path, child_type, choice_element, choice_types, is_primitive

Element = tuple[str | None, Any]  # (FHIR type name or backbone path, the JSON value)

# Types whose search parameters apply to every resource type.
_ABSTRACT_BASES = ("Resource", "DomainResource")


def split_union(expression: str) -> list[str]:
    """The top-level `|` terms of an expression (not those inside parentheses or strings)."""
    terms, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(expression):
        if quote:
            quote = "" if char == quote and expression[index - 1] != "\\" else quote
        elif char in "'`\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "|" and depth == 0:
            terms.append(expression[start:index].strip())
            start = index + 1
    terms.append(expression[start:].strip())
    return [t for t in terms if t]


def _unwrap(term: str) -> str:
    """`(A.b as X)` -> `A.b as X`, when the parentheses enclose the whole term."""
    while term.startswith("(") and _closing(term) == len(term) - 1:
        term = term[1:-1].strip()
    return term


def _closing(term: str) -> int:
    """Index of the parenthesis closing the one that opens `term`."""
    depth = 0
    for index, char in enumerate(term):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return index
    return -1


def term_for_base(term: str, base: str) -> str | None:
    """The term as evaluated on a `base` resource, or None when it is about another type."""
    term = _as_filter(_unwrap(term))
    head = re.match(r"^([A-Z][A-Za-z]*)(?=\.|\s|$)", term)
    if head is None:
        return term  # relative to the resource, e.g. `name | alias`
    if head.group(1) in _ABSTRACT_BASES:
        return base + term[len(head.group(1)) :]
    return term if head.group(1) == base else None


# One step of a path the direct accessor follows: `.name`, `.where(name='literal')`,
# `.extension('url')` (the same as `.extension.where(url='url')`) or `.ofType(Type)`.
_STEP = re.compile(
    r"\.(?:where\(\s*(?P<field>[a-z][A-Za-z0-9]*)\s*=\s*'(?P<literal>[^'\\]*)'\s*\)"
    r"|extension\(\s*'(?P<url>[^'\\]*)'\s*\)"
    r"|ofType\(\s*(?P<type>[A-Za-z]+)\s*\)"
    r"|(?P<name>[a-z][A-Za-z0-9]*))"
)


def _as_filter(term: str) -> str:
    """`path as T` -> `path.ofType(T)`.

    Core R4 expressions such as `Group.characteristic.value as CodeableConcept` mean "the values
    of type T", but FHIRPath's `as` demands a single input and fails on a Group with several
    characteristics; `ofType` is the filter they mean (the reading HAPI and Medplum use too).
    """
    match = re.match(r"^(?P<path>[A-Za-z][A-Za-z0-9.]*)\s+as\s+(?P<type>[A-Za-z]+)$", term)
    return f"{match['path']}.ofType({match['type']})" if match else term


class Term:
    """One `|` term of a parameter's expression for one base type."""

    def __init__(self, base: str, text: str) -> None:
        self.base = base
        self.text = text
        self.static_type: str | None = None
        self._ops = self._plan()
        self.fast = self._ops is not None
        if not self.fast:
            self._check()

    def _check(self) -> None:
        """Compile and try the expression now: a bad one fails at start-up, not on a write."""
        try:
            self._compiled({"resourceType": self.base}, None)
        except Exception as exc:  # fhirpathpy raises bare Exception, KeyError, ...
            raise ValueError(f"FHIRPath expression '{self.text}' cannot be evaluated") from exc

    def _plan(self) -> list[tuple[str, str, str]] | None:
        """The accessor's steps when the term is a typed path with filters it can follow.

        A choice element (`Extension.value`) types its values from their JSON key, so after one
        only `ofType` filters may follow; anything else is left to fhirpathpy.
        """
        steps = _steps(self.text, self.base)
        if steps is None:
            return None
        current, ops, choice = self.base, [], False
        for kind, name, literal in steps:
            if kind == "where":
                if choice:
                    return None
                ops.append((kind, name, literal))
            elif kind == "oftype":
                if choice:
                    ops.append((kind, name, ""))
                elif name != current:
                    return None  # a statically known type that differs: not worth a fast path
            elif choice:
                return None
            else:
                child = child_path(current, name)
                if choice_types(child):
                    choice = True
                    ops.append(("choice", child, ""))
                    continue
                found = child_type(child)
                if found is None:
                    return None
                current = found
                ops.append((kind, name, ""))
        self.static_type = None if choice else current
        return ops

    @property
    def steps(self) -> tuple[tuple[str, str, str], ...]:
        """The direct accessor's steps (child, where, choice, oftype); empty if not fast."""
        return tuple(self._ops or ())

    @cached_property
    def _compiled(self) -> Callable:
        options = {"returnRawData": True, "userInvocationTable": _USER_FUNCTIONS}
        return fhirpathpy.compile(_every_extension(self.text), R4, options=options)

    def elements(self, content: dict) -> Iterator[Element]:
        """The typed elements this term selects in a resource."""
        if not self.fast:
            yield from self.engine_elements(content)
            return
        nodes = [content]
        typed: list[Element] | None = None  # after a choice element: (type, value) pairs
        for kind, name, literal in self._ops or ():
            if kind == "child":
                nodes = _children(nodes, name)
            elif kind == "where":
                nodes = [n for n in nodes if isinstance(n, dict) and n.get(name) == literal]
            elif kind == "choice":
                typed = list(_choices(nodes, name))
            else:
                typed = [(t, v) for t, v in typed or () if t == name]
        if typed is not None:
            yield from typed
            return
        for node in nodes:
            yield self.static_type, node

    def engine_elements(self, content: dict) -> Iterator[Element]:
        """The same, always by fhirpathpy (the oracle for the direct accessor)."""
        try:
            nodes = self._compiled(content, None)
        except Exception as exc:  # the engine's own errors: bare Exception, ValueError, ...
            raise InvalidResource(
                f"{self.base}: the search parameter expression '{self.text}' cannot be "
                "evaluated on this resource"
            ) from exc
        for node in nodes:
            if isinstance(node, ResourceNode):
                type_name, value = node.path, node.data
            else:
                type_name, value = None, node
            # A primitive's `_element` part (its id/extensions) carries no search value.
            if isinstance(value, dict) and is_primitive(type_name):
                continue
            if value is not None:
                yield type_name, value


def _resolve(inputs: list) -> list[ResourceNode]:
    """FHIRPath `resolve()` for indexing: a Reference becomes a stub of the type it names.

    fhirpathpy has no resolver; search expressions use `resolve()` only to test the target's
    type (`where(resolve() is Organization)`), which the reference text already tells.
    """
    stubs = []
    for item in inputs:
        reference = item.get("reference") if isinstance(item, dict) else None
        key = restful_key(reference)
        if key is not None:
            stub = {"resourceType": key[0], "id": key[1]}
            stubs.append(ResourceNode.create_node(stub))  # typed, so `is Organization` works
    return stubs


_USER_FUNCTIONS = {"resolve": {"fn": _resolve, "arity": {0: []}}}


def _steps(text: str, base: str) -> list[tuple[str, str, str]] | None:
    """(`child`, name, '') and (`where`, field, literal) steps; None for any other syntax."""
    if text.startswith(base + "."):
        rest = text[len(base) :]
    elif text[:1].islower():
        rest = "." + text
    else:
        return None
    steps, position = [], 0
    while position < len(rest):
        match = _STEP.match(rest, position)
        if match is None:
            return None
        if match.group("field"):
            steps.append(("where", match.group("field"), match.group("literal")))
        elif match.group("url") is not None:
            steps += [("child", "extension", ""), ("where", "url", match.group("url"))]
        elif match.group("type"):
            steps.append(("oftype", match.group("type"), ""))
        else:
            steps.append(("child", match.group("name"), ""))
        position = match.end()
    return steps


def relative_to(element: str, component: str, base: str) -> str | None:
    """A composite component's expression relative to the composite's element.

    R4 core writes components relative to the element (`code`); NDH writes them from the
    resource (`HealthcareService.extension.where(url=...).extension...`). Such a component is
    rebased when the element's path is a prefix of its own (`extension('u')` and
    `extension.where(url='u')` being the same step); None when it is not.
    """
    if not component.startswith(base + "."):
        return component
    outer, inner = _steps(element, base), _steps(component, base)
    if outer is None or inner is None or inner[: len(outer)] != outer or len(inner) == len(outer):
        return None
    return ".".join(_step_text(*step) for step in inner[len(outer) :])


def _step_text(kind: str, name: str, literal: str) -> str:
    if kind == "where":
        return f"where({name}='{literal}')"
    return f"ofType({name})" if kind == "oftype" else name


# `.extension('url')`: FHIRPath keeps every extension with that url, fhirpathpy 2.2 the first only.
_EXTENSION_CALL = re.compile(r"\.extension\(\s*'(?P<url>[^'\\]*)'\s*\)")


def _every_extension(text: str) -> str:
    """The expression with `extension('u')` spelled `extension.where(url='u')`, which fhirpathpy
    evaluates as the specification says (the direct accessor already reads it so)."""
    return _EXTENSION_CALL.sub(lambda m: f".extension.where(url='{m['url']}')", text)


def _children(nodes: list, name: str) -> list:
    found: list = []
    for node in nodes:
        if isinstance(node, dict):
            value = node.get(name)
            if isinstance(value, list):
                found.extend(v for v in value if v is not None)
            elif value is not None:
                found.append(value)
    return found


def _choices(nodes: list, path: str) -> Iterator[Element]:
    for node in nodes:
        if isinstance(node, dict):
            found = choice_element(path, node)
            if found is not None:
                yield found


def static_kind(terms: list[Term]) -> str:
    """The element type the terms select, when every term declares the same one; else ''."""
    kinds = {t.static_type or _declared_cast(t.text) for t in terms}
    only = kinds.pop() if len(kinds) == 1 else None
    return only or ""


def _declared_cast(text: str) -> str | None:
    match = re.search(r"(?:\bas\s+|ofType\()\s*([A-Za-z]+)\)?\s*$", text)
    if match:
        return match.group(1)
    return "Extension" if re.search(r"extension\.where\([^)]*\)$", text) else None
