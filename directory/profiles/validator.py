"""Validate a resource against StructureDefinition snapshots, driven by the definitions as data.

Two passes over the instance, one walker:
- base: the R4 definition of the resource type, descending into the R4 datatype definitions, for
  cardinality, required bindings and every error-severity constraint (org-1, per-1, ext-1, ...);
- profile: each known profile in `meta.profile`, for its cardinalities, fixed and pattern values,
  required bindings, extension and pattern slices and the constraints it adds.
Both check the resource type a literal reference names against the element's targetProfile.
Must-support is not enforced (it obliges systems, not instances).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .. import references
from .definitions import (
    Definition,
    Element,
    ValueSetCodes,
    definitions,
    profile_type,
    value_sets,
)
from .invariants import UNEVALUATED, holds

# Datatypes whose instance value is a JSON object but which carry no definition of their own here.
BACKBONE_TYPES = {"BackboneElement", "Element"}
CODED_PRIMITIVES = {"code", "string", "uri"}
# The R4 types a choice element ([x]) may take ("open" types), by the suffix they give its JSON
# property (valueString -> string): a profile that narrows a choice refuses the others.
CHOICE_TYPES = (
    *("base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id"),
    *("instant", "integer", "markdown", "oid", "positiveInt", "string", "time", "unsignedInt"),
    *("uri", "url", "uuid", "Address", "Age", "Annotation", "Attachment", "CodeableConcept"),
    *("Coding", "ContactPoint", "Count", "Distance", "Duration", "HumanName", "Identifier"),
    *("Money", "Period", "Quantity", "Range", "Ratio", "Reference", "SampledData", "Signature"),
    *("Timing", "ContactDetail", "Contributor", "DataRequirement", "Expression"),
    *("ParameterDefinition", "RelatedArtifact", "TriggerDefinition", "UsageContext", "Dosage"),
    "Meta",
)
CHOICE_SUFFIXES = {t[0].upper() + t[1:]: t for t in CHOICE_TYPES}
# What a refused reference is told it may be (directory/references.py holds the grammar).
REFERENCE_FORMS = "Type/id, an absolute URL, #id, urn:uuid: or Type?criteria"


@dataclass
class _Run:
    """One pass: the resource, which constraint keys to leave out, and the issues found."""

    resource: dict
    base: bool  # descend into datatype definitions (the base pass) or not (profile passes)
    rule_prefix: str  # names the definition in each issue
    skip_keys: frozenset
    issues: list[dict] = field(default_factory=list)
    # Collected by `profile_references`: (element, expression, reference) of each reference
    # whose type the element allows, for the target conformance check.
    targets: list[tuple[Element, str, str]] | None = None

    def fail(self, code: str, expression: str, rule: str, message: str) -> None:
        self.issues.append(
            {
                "severity": "error",
                "code": code,
                "details": {"text": f"{self.rule_prefix}{rule}"},
                "diagnostics": f"{expression}: {message} ({self.rule_prefix}{rule})",
                "expression": [expression],
            }
        )


@cache
def core_constraint_keys() -> frozenset:
    """Keys of the constraints the base pass evaluates; profile passes do not repeat them."""
    return frozenset(
        c["key"]
        for url, d in definitions().items()
        if url.startswith("http://hl7.org/fhir/StructureDefinition/")
        for e in d.by_id.values()
        for c in e.constraints
    )


def validate_base(resource: dict) -> list[dict]:
    """Issues of `resource` against the R4 definition of its type (empty if none is vendored)."""
    resource_type = resource.get("resourceType")
    definition = definitions().get(resource_type) if isinstance(resource_type, str) else None
    if definition is None:
        return []
    run = _Run(resource, base=True, rule_prefix="", skip_keys=frozenset())
    _walk_root(run, definition)
    return run.issues


def validate_profile(resource: dict, url: str) -> list[dict]:
    """Issues of `resource` against the profile `url`, which must be known (see `known`)."""
    definition = definitions()[url]
    name = url.rsplit("/", 1)[-1]
    run = _Run(resource, base=False, rule_prefix=f"{name}: ", skip_keys=core_constraint_keys())
    if definition.type != resource.get("resourceType"):
        run.fail("structure", "meta.profile", "type", f"the profile is for {definition.type}")
    else:
        _walk_root(run, definition)
    return run.issues


def profile_references(resource: dict, url: str) -> list[tuple[Element, str, str]]:
    """(element, expression, reference) of the literal references the profile `url` constrains
    by targetProfile in `resource`, whose type the element allows (the same walk as
    `validate_profile`, so slices and extensions are reached the same way)."""
    definition = definitions()[url]
    if definition.type != resource.get("resourceType"):
        return []
    run = _Run(resource, base=False, rule_prefix="", skip_keys=core_constraint_keys(), targets=[])
    _walk_root(run, definition)
    return run.targets or []


def claimed_profiles(resource: dict) -> list[str]:
    """The profiles `resource` claims in meta.profile (as given, |version and all)."""
    meta = resource.get("meta")
    claimed = meta.get("profile") if isinstance(meta, dict) else None
    return [p for p in claimed if isinstance(p, str)] if isinstance(claimed, list) else []


def known(url: str) -> bool:
    """Whether `url` (a canonical, with or without |version) is a profile validated here."""
    definition = definitions().get(url)
    return definition is not None and definition.kind == "resource" and "/" in url


def _walk_root(run: _Run, definition: Definition) -> None:
    root, rtype = definition.root, definition.type
    _constraints(run, root, run.resource, rtype, rtype, set())
    _walk_children(run, run.resource, root.children, rtype)


def _walk_children(run: _Run, node: dict, children: list[Element], jpath: str) -> None:
    for child in children:
        if child.choices:
            _other_choices(run, node, child, jpath)
        if not child.choices and child.name not in node and f"_{child.name}" not in node:
            if child.min:  # absent: only a minimum can fail
                _cardinality(run, child, 0, f"{jpath}.{child.label}", child.id)
            continue
        values = _values(node, child)
        _cardinality(run, child, len(values), f"{jpath}.{child.label}", child.id)
        for value, type_code, vpath in values:
            _walk_value(run, child, value, type_code, f"{jpath}.{vpath}")
        if child.slices and values:
            _slices(run, child, values, jpath)


def _other_choices(run: _Run, node: dict, element: Element, jpath: str) -> None:
    """A choice element's value in a type the definition does not allow (valueString where a
    profile allows only valueCodeableConcept): the walker would not see it at all."""
    allowed = {key for key, _ in element.choices}
    for key in node:
        name = key.removeprefix("_")
        suffix = name[len(element.label) :]
        if name.startswith(element.label) and name not in allowed and suffix in CHOICE_SUFFIXES:
            vpath = f"{jpath}.{element.label}.ofType({CHOICE_SUFFIXES[suffix]})"
            kinds = ", ".join(t for _, t in element.choices)
            run.fail("structure", vpath, element.id, f"type not allowed here (allowed: {kinds})")


def _walk_value(run: _Run, element: Element, value: Any, type_code: str, vpath: str) -> None:
    """Apply an element's value rules to one value, then descend into it."""
    if run.targets is None:  # collecting references only: the value rules were judged already
        _fixed(run, element, value, vpath)
        _binding(run, element, value, type_code, vpath)
    if type_code == "Reference" and element.target_profiles:
        _reference_target(run, element, value, vpath)
    done = _constraints(run, element, value, _fp_type(element, type_code), vpath, set())
    if not isinstance(value, dict):
        return
    children = element.children
    if not children:
        extension = _extension_definition(element)
        if extension is not None:
            _constraints(run, extension.root, value, "Extension", vpath, done)
            children = extension.root.children
        elif run.base and type_code in definitions() and type_code not in BACKBONE_TYPES:
            datatype = definitions()[type_code].root
            _constraints(run, datatype, value, type_code, vpath, done)
            children = datatype.children
    _walk_children(run, value, children, vpath)


def _extension_definition(element: Element) -> Definition | None:
    """The extension definition an element's type names, if vendored (profiles only)."""
    for url in element.type_profiles:
        definition = definitions().get(url)
        if definition is not None and definition.type == "Extension":
            return definition
    return None


def _values(node: dict, element: Element) -> list[tuple[object, str, str]]:
    """(value, type code, FHIRPath step) for each value of `element` in the JSON object `node`."""
    if element.choices:
        # A primitive choice may be present as its extension only ("_valueString").
        return [
            (node.get(key), t, f"{element.label}.ofType({t})")
            for key, t in element.choices
            if key in node or f"_{key}" in node
        ]
    name = element.name
    type_code = element.types[0] if element.types else ""
    if name not in node:
        # A primitive may be present as its extension only ("_name").
        shadow = node.get(f"_{name}")
        count = len(shadow) if isinstance(shadow, list) else int(shadow is not None)
        return [(None, type_code, f"{name}[{i}]") for i in range(count)]
    value = node[name]
    if isinstance(value, list):
        return [(item, type_code, f"{name}[{i}]") for i, item in enumerate(value)]
    return [(value, type_code, name)]


def _fp_type(element: Element, type_code: str) -> str:
    """The type path fhirpathpy needs to resolve choices and children below a node."""
    if type_code and type_code not in BACKBONE_TYPES:
        return type_code
    return element.path


def _cardinality(run: _Run, element: Element, count: int, label: str, rule: str) -> None:
    if count < element.min:
        run.fail("required", label, rule, f"minimum cardinality {element.min}, found {count}")
    if element.max is not None and count > element.max:
        run.fail("structure", label, rule, f"maximum cardinality {element.max}, found {count}")


def _fixed(run: _Run, element: Element, value: Any, vpath: str) -> None:
    if element.fixed is None or value is None:
        return
    kind, expected = element.fixed
    ok = value == expected if kind == "fixed" else _matches_pattern(value, expected)
    if not ok:
        run.fail("value", vpath, element.id, f"must be {kind} value {_short(expected)}")


def _matches_pattern(value: Any, pattern: Any) -> bool:
    """FHIR pattern semantics: every property the pattern has, the value has with equal content."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            _matches_pattern(value.get(k), v) for k, v in pattern.items()
        )
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else []
        return all(any(_matches_pattern(i, p) for i in items) for p in pattern)
    return value == pattern


def _codes(value: Any, type_code: str) -> list[tuple[str | None, str]] | None:
    """(system, code) pairs a coded value carries; None if the type is not a coded one."""
    if type_code in CODED_PRIMITIVES:
        return [(None, value)] if isinstance(value, str) else []
    if type_code == "Coding":
        return _coding(value)
    if type_code == "CodeableConcept":
        codings = value.get("coding") if isinstance(value, dict) else None
        return [c for item in codings for c in _coding(item)] if isinstance(codings, list) else []
    return None


def _coding(value: Any) -> list[tuple[str | None, str]]:
    """A Coding's (system, code), if it has the shape of one (the structural pass said why not)."""
    if not isinstance(value, dict) or not isinstance(value.get("code"), str):
        return []
    system = value.get("system")
    return [(system if isinstance(system, str) else None, value["code"])]


def _in_value_set(codes: list, allowed: ValueSetCodes) -> bool:
    if allowed.grammar is not None:
        return any(allowed.includes(system, code) for system, code in codes)
    # Listed sets, the common case, tested inline: this runs for every coded value.
    return any(
        (system, code) in allowed.pairs if system is not None else code in allowed.codes
        for system, code in codes
    )


def _binding(run: _Run, element: Element, value: Any, type_code: str, vpath: str) -> None:
    if element.binding is None or value is None:
        return
    allowed = value_sets()[0].get(element.binding)
    codes = _codes(value, type_code)
    if allowed is None or codes is None:
        return  # not enumerable here (listed in data/value-sets.json), or not a coded type
    if not _in_value_set(codes, allowed):
        shown = ", ".join(f"'{s}|{c}'" if s else f"'{c}'" for s, c in codes) or "no code"
        if allowed.grammar is not None:
            listed = f" ({allowed.grammar[2]})"
        else:
            listed = f" ({', '.join(sorted(allowed.codes))})" if len(allowed.codes) <= 10 else ""
        message = f"{_short(shown)} is not in the required value set {element.binding}{listed}"
        run.fail("code-invalid", vpath, element.id, message)


def _reference_target(run: _Run, element: Element, value: Any, vpath: str) -> None:
    """Refuse a literal reference to a resource type the element's targetProfile does not allow.

    Only the type the reference names is checked (the referenced resource is not read here:
    directory/profiles/targets.py judges it against the target profiles when it is stored); a
    logical reference (identifier only) or one whose type cannot be told is not judged.
    """
    reference = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(reference, str):
        return
    allowed = allowed_targets(element)
    if allowed is None:
        return
    if references.parse(reference) is None and "://" not in reference:
        # Not relative `Type/id` (an unknown type, a bad id) nor any other literal form: it
        # could name nothing here, and would be stored unchecked (no index row to resolve).
        message = f"'{_short(reference)}' is not a literal reference ({REFERENCE_FORMS})"
        run.fail("value", f"{vpath}.reference", element.id, message)
        return
    named = referenced_type(reference, run.resource)
    if named is not None and named not in allowed:
        message = (
            f"names a resource of type {_short(named)}; {element.path} may refer to "
            f"{' or '.join(sorted(allowed))} only"
        )
        run.fail("value", f"{vpath}.reference", element.id, message)
    elif run.targets is not None and not run.base:
        run.targets.append((element, f"{vpath}.reference", reference))


@cache
def allowed_targets(element: Element) -> frozenset[str] | None:
    """Resource types the element's references may name; None if any (or an unknown profile)."""
    types = {profile_type(url) for url in element.target_profiles}
    if None in types or "Resource" in types or "DomainResource" in types:
        return None
    return frozenset(t for t in types if t is not None)


def referenced_type(reference: str, resource: dict) -> str | None:
    """The resource type a literal reference names, if it can be told without resolving it.

    `#id` names a contained resource (`#` the container itself); `urn:uuid:`/`urn:oid:` names
    a Bundle entry, which transactions rewrite to `Type/id` before validating. An absolute URL
    whose path does not end in `Type/id` of an R4 type is any web address: no type.
    """
    parsed = references.parse(reference)
    if parsed is None or parsed.is_temporary:
        return None
    if parsed.is_local:
        return _contained_type(parsed.id or "", resource)
    return parsed.type


def _contained_type(local_id: str, resource: dict) -> str | None:
    if not local_id:
        return _string(resource.get("resourceType"))
    contained = resource.get("contained")
    for item in contained if isinstance(contained, list) else []:
        if isinstance(item, dict) and item.get("id") == local_id:
            return _string(item.get("resourceType"))
    return None  # no such contained resource: ref-1 refuses it


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _constraints(
    run: _Run, element: Element, value: Any, fp_type: str, vpath: str, done: set
) -> set:
    """Evaluate the element's constraints on one value, except keys in `done`; return `done`.

    An element and its datatype both carry ele-1 and ext-1: each key runs once per value.
    """
    if run.targets is not None:
        return done  # collecting references only (`profile_references`): no FHIRPath
    for constraint in evaluated_constraints(element):
        key = constraint["key"]
        if key in run.skip_keys or key in done:
            continue
        done.add(key)
        if key == "ele-1" and not isinstance(value, dict):
            continue  # a JSON primitive always has a value, so ele-1 holds (see data/README.md)
        result = holds(constraint["expression"], value, fp_type, run.resource)
        if result is None:
            run.fail("invariant", vpath, key, "constraint could not be evaluated")
        elif not result:
            run.fail("invariant", vpath, key, constraint.get("human", "constraint failed"))
    return done


@cache
def evaluated_constraints(element: Element) -> tuple[dict, ...]:
    """The element's constraints that writes enforce: errors with an evaluable expression."""
    return tuple(
        c
        for c in element.constraints
        if c.get("severity") == "error" and "expression" in c and c["key"] not in UNEVALUATED
    )


def _slices(run: _Run, element: Element, values: list, jpath: str) -> None:
    """Match each value to the element's slices; check slice cardinality and slice rules."""
    slicing = element.slicing or {}
    discriminators = slicing.get("discriminator", [])
    by_key = bool(element.choices)  # choice type slices: the JSON key names the type
    if not by_key and any(d.get("type") not in ("value", "pattern") for d in discriminators):
        return  # unevaluated slicing (type, profile, exists discriminators): see README
    matched_any = [False] * len(values)
    for slice_ in element.slices:
        hits = [
            (i, v)
            for i, v in enumerate(values)
            if _slice_matches(slice_, v, discriminators, by_key)
        ]
        _cardinality(run, slice_, len(hits), f"{jpath}.{element.label}", slice_.id)
        for i, (value, type_code, vpath) in hits:
            matched_any[i] = True
            _walk_value(run, slice_, value, type_code, f"{jpath}.{vpath}")
    if slicing.get("rules") == "closed":
        for hit, (_, _, vpath) in zip(matched_any, values, strict=True):
            if not hit:
                run.fail("structure", f"{jpath}.{vpath}", element.id, "matches no slice")


def _slice_matches(slice_: Element, entry: tuple, discriminators: list, by_key: bool) -> bool:
    value, type_code, _ = entry
    if by_key:
        return f"{slice_.name[:-3]}{type_code[0].upper()}{type_code[1:]}" == slice_.slice_name
    for discriminator in discriminators:
        path = discriminator.get("path", "$this")
        expected = _expected(slice_, path)
        if expected is None:
            return False
        actual = value if path == "$this" else _navigate(value, path)
        kind, want = expected
        if kind == "binding":
            allowed = value_sets()[0].get(str(want))
            codes = _codes(actual, type_code)
            if allowed is None or not codes or not _in_value_set(codes, allowed):
                return False
        elif (kind == "fixed" and actual != want) or (
            kind == "pattern" and not _matches_pattern(actual, want)
        ):
            return False
    return True


def _expected(slice_: Element, path: str) -> tuple[str, object] | None:
    """What a discriminator path must hold for a value to be in this slice."""
    if path == "url" and slice_.type_profiles:
        return ("fixed", slice_.type_profiles[0])
    element = slice_
    if path != "$this":
        for step in path.split("."):
            child = next((c for c in element.children if c.name == step), None)
            if child is None:
                return None
            element = child
    if element.fixed is not None:
        return element.fixed
    if element.binding is not None:
        return ("binding", element.binding)
    return None


def _navigate(value: Any, path: str) -> Any:
    for step in path.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return value


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."
