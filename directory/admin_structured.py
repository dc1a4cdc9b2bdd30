"""The derived form laid out for the change page: elements, their rows and inputs, and the
storage errors placed next to the input they concern."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from .admin_fields import CODING_PART, PREFIX, FormField, display, error_key, items

# Bound value sets up to this size are a select; larger ones (NUCC taxonomy) a searchable list.
SELECT_MAX = 40


@dataclass
class Input:
    name: str
    label: str
    value: str
    kind: str  # "text" | "textarea" | "select" | "boolean"
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label)
    datalist: str = ""  # id of the <datalist> of codes
    lookup: str = ""  # space-separated "Type=url" reference search endpoints
    check_identifier: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass
class Row:
    key: str
    inputs: list[Input]
    removable: bool
    errors: list[str] = field(default_factory=list)


@dataclass
class ElementView:
    field: FormField
    rows: list[Row]
    # dataclasses.field by its full name: `field` is this class's own attribute here.
    errors: list[str] = dataclasses.field(default_factory=list)
    datalists: dict[str, list[tuple[str, str]]] = dataclasses.field(
        default_factory=dict
    )  # (value, label)


def layout(
    fields: list[FormField],
    resource: dict,
    values: dict[str, str],
    lookup_url: Callable[[str], str | None],
) -> list[ElementView]:
    """Every element with one row per stored value, plus a blank row to add one."""
    out = []
    for f in fields:
        count = len(items(f, resource))
        stored_rows = max(count, _posted_rows(values, f))
        blank = 1 if (f.repeats or stored_rows == 0) else 0
        view = ElementView(f, [])
        for index in range(stored_rows + blank):
            key = f"{f.name}.{index}"
            # Removing a single value is clearing it; a list item has its own checkbox.
            removable = f.repeats and index < count
            view.rows.append(Row(key, _inputs(view, f, key, values, lookup_url), removable))
        out.append(view)
    return out


def _posted_rows(values: dict[str, str], f: FormField) -> int:
    """Rows the administrator had filled in when a refused save re-renders the page."""
    prefix = f"{PREFIX}{f.name}."
    found = [
        int(k[len(prefix) :].split(".")[0])
        for k, v in values.items()
        if k.startswith(prefix) and v and not k.endswith("._remove")
    ]
    return max(found) + 1 if found else 0


def _inputs(
    view: ElementView,
    f: FormField,
    key: str,
    values: dict[str, str],
    lookup_url: Callable[[str], str | None],
) -> list[Input]:
    if f.primitive:
        name = f"{PREFIX}{key}"
        return [_input(view, f.name, f.type, f.codes, name, f.label, values, f.open_codes)]
    inputs: list[Input] = []
    for part in f.parts:
        coding = part.name == CODING_PART
        codes = f.codes if coding else part.codes
        name = f"{PREFIX}{key}.{part.name}"
        list_id = f"{f.name}-{part.name}"
        free = coding and f.open_codes
        item = _input(view, list_id, part.type, codes, name, part.label, values, free)
        item.kind = "textarea" if part.repeats else item.kind  # one value per line
        if f.type == "Reference" and part.name == "reference":
            item.lookup = " ".join(
                f"{t}={url}" for t in f.targets if (url := lookup_url(t)) is not None
            )
        if f.type == "Identifier" and part.name == "value":
            item.check_identifier = True
        inputs.append(item)
    return inputs


def _input(
    view: ElementView,
    list_id: str,
    type_: str,
    codes: tuple[tuple[str, str], ...],
    name: str,
    label: str,
    values: dict[str, str],
    free: bool = False,
) -> Input:
    """One input; with codes a select, or (a large set, or `free`: an extensible binding that
    accepts other codes) a text input with a <datalist> of them."""
    value = values.get(name, "")
    if type_ == "boolean":
        options = [("", "—"), ("true", "Yes"), ("false", "No")]
        return Input(name, label, value, "boolean", options)
    if not codes:
        return Input(name, label, value, "text")
    choices = [(_choice(type_, system, code), _label(system, code)) for system, code in codes]
    if len(choices) <= SELECT_MAX and not free:
        options = [("", "—"), *choices]
        if value and value not in dict(choices):
            options.append((value, value))  # a stored code outside the set stays selectable
        return Input(name, label, value, "select", options)
    list_id = f"codes-{list_id}"
    view.datalists[list_id] = choices
    return Input(name, label, value, "text", datalist=list_id)


def _label(system: str, code: str) -> str:
    text = display(system, code)
    return f"{code} — {text}" if text else code


def _choice(type_: str, system: str, code: str) -> str:
    # A `code` carries no system; a Coding is written "system|code".
    return code if type_ == "code" else f"{system}|{code}"


def place_errors(views: list[ElementView], issues: list[dict], resource_type: str) -> list[str]:
    """Puts each issue at the deepest input, row or element its expression names; returns the
    texts that name nothing on the form."""
    inputs = {i.name[len(PREFIX) :]: i for v in views for r in v.rows for i in r.inputs}
    rows = {r.key: r for v in views for r in v.rows}
    elements = {v.field.name: v for v in views}
    unplaced = []
    for issue in issues:
        text = issue.get("diagnostics") or issue.get("code", "error")
        targets = [error_key(e, resource_type) for e in issue.get("expression") or []]
        if not any(_place(key, text, inputs, rows, elements) for key in targets if key):
            unplaced.append(text)
    return unplaced


def _place(
    key: str,
    text: str,
    inputs: dict[str, Input],
    rows: dict[str, Row],
    elements: dict[str, ElementView],
) -> bool:
    segments = key.split(".")
    scalar = segments[0] in elements and not elements[segments[0]].field.is_list
    if scalar and (len(segments) == 1 or not segments[1].isdigit()):
        segments.insert(1, "0")  # a single-valued element is row 0 of its own
    for end in range(len(segments), 0, -1):
        candidate = ".".join(segments[:end])
        for table in (inputs, rows):
            if candidate in table:
                table[candidate].errors.append(text)
                return True
        if candidate in elements:
            elements[candidate].errors.append(text)
            return True
    return False


__all__ = ["ElementView", "Input", "Row", "layout", "place_errors"]
