"""Query values derived from what each parameter's expression selects, and the oracle's answers.

Every case is computed from the vendored data at collection time, so each parametrized test id
names the SearchParameter and the exact query, and a failure says which resources were missing
or unexpected. Every parameter also gets values that match nothing, so a server that ignores a
parameter (and returns everything) fails.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from . import oracle, package
from .oracle import matches, references_of

NO_STRING = "Zzyzx-no-such-value"
NO_CODE = "no-such-code"
NO_SYSTEM = "http://example.org/no-such-system"
NO_ID = "no-such-id"
PER_PARAM = 3  # distinct selected values tried per parameter (each in a few forms)
PER_CHAIN = 1  # values of the chained parameter tried per declared chain
_ACCENTED = str.maketrans("aeiouAEIOU", "áéíóúÁÉÍÓÚ")


@dataclass(frozen=True)
class Case:
    """One search and the ids the oracle says it must match."""

    name: str  # the pytest id: SearchParameter and query
    base: str
    params: tuple[tuple[str, str], ...]
    expected: frozenset[str]  # ids of base-type matches
    included: frozenset[str] = frozenset()  # `Type/id` of what _include/_revinclude must add
    may_include: frozenset[str] = frozenset()  # what it may add too (`*` is the server's to say)

    @property
    def query(self) -> str:
        return urlencode(self.params)


def _case(name: str, base: str, params: Iterable[tuple[str, str]], ids: Iterable[str]) -> Case:
    return Case(name, base, tuple(params), frozenset(ids))


def _escape(text: str) -> str:
    return "".join("\\" + c if c in "\\,$|" else c for c in text)


def escaped(param: dict, value: str) -> str:
    """A value as written in a query: `,` `$` `|` `\\` escaped (search.html, escaping), except
    the `|` that separates a token's system from its code."""
    if param["type"] == "token" and "|" in value:
        system, code = value.split("|", 1)
        return f"{_escape(system)}|{_escape(code)}"
    return _escape(value)


def _distinct(items: Iterable) -> list:
    return list(dict.fromkeys(items))


# --- Values a parameter is queried with -------------------------------------------------------


def _selected(param: dict, base: str, among: frozenset[str] | None = None) -> list[oracle.Node]:
    """What the parameter selects in the stored resources of `base` (or only those `among`)."""
    resources = package.of_type(base)
    if among is not None:
        resources = [r for r in resources if package.key(r) in among]
    return [n for r in resources for n in oracle.selected(param, r)]


def _accent_varied(text: str) -> str:
    """Accents taken away where the text has some, else put on: FHIR folds both ways."""
    stripped = oracle.fold(text)
    if stripped != text.lower():
        return "".join(c for c in stripped if c.isascii())
    return text.translate(_ACCENTED)


def _cycled(items: list, forms: list) -> list:
    """Each item in the next form, then the forms no item got applied to the first item."""
    values = [form(item) for item, form in zip(items, itertools.cycle(forms), strict=False)]
    return values + [form(items[0]) for form in forms[len(items) :] if items]


def string_values(param: dict, base: str, among=None) -> list[tuple[str, str]]:
    """(modifier, value): whole values, prefixes, other case, other accents; the declared
    `:exact` and `:contains`; and a value matching nothing."""
    parts = _distinct(p for n in _selected(param, base, among) for p in oracle.string_parts(n))
    parts = [p for p in parts if p.strip()][:PER_PARAM]
    forms = [
        lambda p: p,
        lambda p: p[: max(2, len(p) // 2)],
        lambda p: p[: max(2, len(p) // 2)].upper(),
        _accent_varied,
    ]
    values = [("", v) for v in _cycled(parts, forms)]
    declared = param.get("modifier") or []
    if parts and "exact" in declared:
        values += [("exact", parts[0]), ("exact", parts[0].swapcase())]
    if parts and "contains" in declared:
        values += [("contains", parts[-1][1:-1] or parts[-1])]
    return _distinct([*values, ("", NO_STRING)])


def token_values(param: dict, base: str, among=None) -> list[tuple[str, str]]:
    """`code` and `system|code` of selected tokens, `|code` and `system|`, and misses."""
    every = _distinct(t for n in _selected(param, base, among) for t in oracle.tokens(n))
    found = every[:PER_PARAM]
    forms = [lambda t: t.code, lambda t: f"{t.system or ''}|{t.code}" if t.has_system else t.code]
    values = _cycled(found, forms)
    systems = [t for t in found if t.has_system and t.system]
    # `|code` matches codes without a system: one of those when the data has it, else a miss.
    bare = [t for t in every if t.has_system and not t.system] or systems
    if bare:
        values.append(f"|{bare[0].code}")
    if systems:
        values += [f"{systems[0].system}|", f"{systems[0].system}|{NO_CODE}"]
    # A known code under a system nobody uses: a server that ignores the system fails it.
    misses = [NO_CODE] + [f"{NO_SYSTEM}|{found[0].code}" for _ in found[:1]]
    return [("", v) for v in _distinct(values + misses)]


def reference_values(param: dict, base: str, among=None) -> list[tuple[str, str]]:
    """`Type/id` and the bare id of what the references resolve to, and a miss."""
    keys = _distinct(k for n in _selected(param, base, among) for k in oracle.referenced_keys(n))
    forms = [lambda k: k, lambda k: k.split("/")[1]]
    values = _cycled(keys[:PER_PARAM], forms)
    return [("", v) for v in _distinct([*values, f"{oracle.targets(param)[0]}/{NO_ID}"])]


def date_values(param: dict, base: str, among=None) -> list[tuple[str, str]]:
    """Every prefix on the first date the data holds, eq and lt on the others (day and year
    precision), and a miss."""
    days = set()
    for node in _selected(param, base, among):
        for start, end in oracle.date_ranges(node):
            if start != oracle.NEVER_BEFORE:
                days.add(start.date().isoformat())
            if end != oracle.NEVER_AFTER:
                days.add((end - timedelta(microseconds=1)).date().isoformat())
    values = []
    for index, day in enumerate(sorted(days)[:PER_PARAM]):
        prefixes = ("eq", "ge", "lt", "gt", "le") if index == 0 else ("eq", "lt")
        values += [f"{prefix}{day}" for prefix in prefixes]
        values.append(day[:4]) if index == 0 else None
    return [("", v) for v in _distinct([*values, "eq1900-01-01"])]


VALUE_MAKERS = {
    "string": string_values,
    "token": token_values,
    "reference": reference_values,
    "date": date_values,
}


def values_for(param: dict, base: str, among: frozenset[str] | None = None):
    """(modifier, value) pairs to query `param` with, from what it selects (in `among`)."""
    return VALUE_MAKERS[param["type"]](param, base, among)


def _misses(values: list[tuple[str, str]], param: dict, base: str) -> list[tuple[str, str]]:
    return [(m, v) for m, v in values if not oracle.expected(base, param, v, m)]


def _hits(values: list[tuple[str, str]], param: dict, base: str) -> list[tuple[str, str]]:
    return [(m, v) for m, v in values if oracle.expected(base, param, v, m)]


# --- Every Plan-Net SearchParameter -------------------------------------------------------------


def parameter_cases() -> list[Case]:
    cases = []
    for param in package.PLAN_NET_PARAMS:
        for base in param["base"]:
            for modifier, value in values_for(param, base):
                name = param["code"] + (f":{modifier}" if modifier else "")
                cases.append(
                    _case(
                        f"{param['id']}:{name}={value}",
                        base,
                        [(name, escaped(param, value))],
                        oracle.expected(base, param, value, modifier),
                    )
                )
    return cases


# --- Chains ---------------------------------------------------------------------------------


def chain_expected(base: str, hops: list[tuple[dict, str]], last: dict, value: str) -> set[str]:
    """Resources of `base` from which the reference hops (parameter, target type) reach a
    resource meeting `last=value`."""

    def reaches(resource: dict, rest: list[tuple[dict, str]]) -> bool:
        if not rest:
            return matches(last, resource, value)
        (param, target), *after = rest
        keys = references_of(param, resource, target)
        return any(reaches(package.RESOURCES[k], after) for k in keys)

    return {r["id"] for r in package.of_type(base) if reaches(r, hops)}


def _chain_values(param: dict, base: str, among=None) -> list[tuple[str, str]]:
    """A value the chained parameter matches with, taken from the resources the chain reaches
    (`among`) so that the hit is a real one, and a value it matches nothing with."""
    plain = [(m, v) for m, v in values_for(param, base, among) if not m]
    return _hits(plain, param, base)[:PER_CHAIN] + _misses(plain, param, base)[:1]


def _chain_case(base, hops, codes, last, value, typed=False) -> Case:
    first_code = codes[0] + (f":{hops[0][1]}" if typed else "")
    name = ".".join([first_code, *codes[1:]])
    first_param = hops[0][0]
    return _case(
        f"{first_param['id']}:{name}={value}",
        base,
        [(name, escaped(last, value))],
        chain_expected(base, hops, last, value),
    )


def chain_cases() -> list[Case]:
    """Every declared chain; the first of each parameter also with its `:Type` modifier and,
    where the chained parameter is a reference with chains of its own, a second hop."""
    cases = []
    for param in package.PLAN_NET_PARAMS:
        for base in param["base"]:
            for target in (param.get("target") or [])[:1] if param.get("chain") else []:
                for index, code in enumerate(param["chain"]):
                    cases += _declared_chain(base, param, target, code, first=index == 0)
    return cases + _extra_chains()


def _declared_chain(base, param, target, code, first: bool) -> list[Case]:
    chained = package.definition(target, code)
    if chained is None:
        raise LookupError(f"{param['id']} declares chain '{code}', defined for no {target}")
    hops, codes = [(param, target)], [param["code"], code]
    reached = _reached(base, param, target)
    values = _chain_values(chained, target, reached)
    found = [_chain_case(base, hops, codes, chained, value) for _, value in values]
    if first and values:
        found.append(_chain_case(base, hops, codes, chained, values[0][1], typed=True))
    if chained["type"] == "reference" and chained.get("chain"):
        found += _second_hop(base, hops, codes, chained, reached)
    return found


def _second_hop(base, hops, codes, chained, reached) -> list[Case]:
    """`a.b.c=value`: through the chained reference to its own first declared chain."""
    second_target, second_code = chained["target"][0], chained["chain"][0]
    last = package.definition(second_target, second_code)
    further = frozenset(
        k for t in reached for k in references_of(chained, package.RESOURCES[t], second_target)
    )
    two_hops = [*hops, (chained, second_target)]
    return [
        _chain_case(base, two_hops, [*codes, second_code], last, value)
        for _, value in _chain_values(last, second_target, further)[:1]
    ]


def _reached(base: str, param: dict, target: str) -> frozenset[str]:
    """`Type/id` of the `target` resources the parameter points at from any `base` resource."""
    return frozenset(k for r in package.of_type(base) for k in references_of(param, r, target))


# Chains no SearchParameter declares, through R4 core parameters: a server must chain on every
# reference parameter, not only on the declared pairs.
EXTRA_CHAINS = [
    ("PractitionerRole", "practitioner", "Practitioner", "identifier"),
    ("PractitionerRole", "location", "Location", "name"),
    ("OrganizationAffiliation", "participating-organization", "Organization", "identifier"),
]


def _extra_chains() -> list[Case]:
    cases = []
    for base, code, target, chained_code in EXTRA_CHAINS:
        param = package.definition(base, code)
        chained = package.definition(target, chained_code)
        for _, value in _chain_values(chained, target, _reached(base, param, target)):
            cases.append(_chain_case(base, [(param, target)], [code, chained_code], chained, value))
    return cases


# --- _has ------------------------------------------------------------------------------------

HAS_FILTERS = 2  # filter parameters of the source type tried per reference parameter
NESTED_HAS = 24  # nested `_has` cases, spread over the reference parameter pairs


def _reference_params() -> list[tuple[str, dict]]:
    return [
        (base, p) for p in package.PLAN_NET_PARAMS if p["type"] == "reference" for base in p["base"]
    ]


def _filter_params(base: str) -> list[dict]:
    return [
        p
        for p in package.PLAN_NET_PARAMS
        if base in p["base"] and p["type"] in ("string", "token", "date")
    ]


def has_expected(target: str, chain: list[tuple[str, dict]], last: dict, value: str) -> set[str]:
    """Resources of `target` that a `source` resource points at through each (source, param)
    of `chain` (outermost first), the innermost source meeting `last=value`."""

    def pointed_at(into: str, rest: list[tuple[str, dict]]) -> set[str]:
        (source, param), *inner = rest
        sources = package.of_type(source)
        if inner:
            allowed = pointed_at(source, inner)
            sources = [s for s in sources if s["id"] in allowed]
        else:
            sources = [s for s in sources if matches(last, s, value)]
        keys = set().union(*(references_of(param, s, into) for s in sources))
        return {k.split("/")[1] for k in keys}

    return pointed_at(target, chain)


def _has_case(target, chain, last, value) -> Case:
    links = ":".join(f"_has:{source}:{param['code']}" for source, param in chain)
    name = f"{links}:{last['code']}"
    ids = [p["id"] for _, p in chain]
    return _case(
        f"{target}?{'/'.join(ids)}>{last['id']}:{name}={value}",
        target,
        [(name, escaped(last, value))],
        has_expected(target, chain, last, value),
    )


def _referenced_types(base: str, param: dict) -> list[str]:
    """Target types the parameter really points at in the data (others would be empty)."""
    found = {k.split("/")[0] for r in package.of_type(base) for k in references_of(param, r)}
    return [t for t in oracle.targets(param) if t in found]


def _source_values(last: dict, source: str, among=None) -> tuple[list, list]:
    """(hits, misses) among the plain values of a filter parameter of the `_has` source, the
    values taken from the sources `among` (those that point where the `_has` looks)."""
    plain = [(m, v) for m, v in values_for(last, source, among) if not m]
    return _hits(plain, last, source), _misses(plain, last, source)


def _pointing(source: str, param: dict, target: str, into=None) -> frozenset[str]:
    """`Type/id` of the `source` resources whose `param` points at a `target` (one `into`)."""
    return frozenset(
        package.key(r)
        for r in package.of_type(source)
        if (found := references_of(param, r, target)) and (into is None or found & into)
    )


def has_cases() -> list[Case]:
    """One level: every reference parameter, each target type it points at, with a matching
    value of two filter parameters of its source type and one value matching nothing."""
    cases = []
    for source, param in _reference_params():
        for target in _referenced_types(source, param):
            chain = [(source, param)]
            pointing = _pointing(source, param, target)
            filters = [p for p in _filter_params(source) if _source_values(p, source, pointing)[0]]
            for index, last in enumerate(filters[:HAS_FILTERS]):
                hits, misses = _source_values(last, source, pointing)
                for _, value in hits[:1] + (misses[:1] if index == 0 else []):
                    cases.append(_has_case(target, chain, last, value))
    return cases + _nested_has_cases()


def _nested_has_cases() -> list[Case]:
    """`_has:A:p:_has:B:q:filter=value`, for reference parameter pairs that meet in the data."""
    candidates = []
    for source, param in _reference_params():
        for target in _referenced_types(source, param):
            for inner_source, inner_param in _reference_params():
                if source not in _referenced_types(inner_source, inner_param):
                    continue
                chain = [(source, param), (inner_source, inner_param)]
                middle = _pointing(source, param, target)
                pointing = _pointing(inner_source, inner_param, source, middle)
                for last in _filter_params(inner_source):
                    hits, _ = _source_values(last, inner_source, pointing)
                    if hits:
                        candidates.append(_has_case(target, chain, last, hits[0][1]))
                        break
    step = max(1, len(candidates) // NESTED_HAS)
    return candidates[::step][:NESTED_HAS]


# --- _include:iterate / _revinclude:iterate ------------------------------------------------


@dataclass(frozen=True)
class Include:
    source: str
    param: dict
    iterate: bool
    reverse: bool

    @property
    def query(self) -> tuple[str, str]:
        name = "_revinclude" if self.reverse else "_include"
        modifier = ":iterate" if self.iterate else ""
        return f"{name}{modifier}", f"{self.source}:{self.param['code']}"


def include_closure(matched: set[str], includes: list[Include]) -> set[str]:
    """`Type/id` of everything the includes add: plain ones from the matches, iterate ones
    again and again from everything found until nothing new appears."""
    found = set(matched)
    for inc in includes:
        if not inc.iterate:
            found |= _one_step(inc, matched)
    while True:
        more = set().union(*(_one_step(inc, found) for inc in includes if inc.iterate)) - found
        if not more:
            return found - matched
        found |= more


def _one_step(inc: Include, keys: set[str]) -> set[str]:
    if not inc.reverse:
        step = set()
        for k in keys:
            if k.startswith(f"{inc.source}/"):
                step |= references_of(inc.param, package.RESOURCES[k])
        return step
    return {
        package.key(r) for r in package.of_type(inc.source) if references_of(inc.param, r) & keys
    }


def _include_case(base: str, includes: list[Include]) -> Case:
    matched = {package.key(r) for r in package.of_type(base)}
    params = [inc.query for inc in includes]
    name = "&".join(f"{k}={v}" for k, v in params)
    return Case(
        f"{base}?{name}",
        base,
        tuple(params),
        frozenset(k.split("/")[1] for k in matched),
        frozenset(include_closure(matched, includes)),
    )


def _adds_something(base: str, plain: list[Include], step: Include) -> bool:
    matched = {package.key(r) for r in package.of_type(base)}
    return include_closure(matched, [*plain, step]) != include_closure(matched, plain)


def iterate_cases() -> list[Case]:
    """Each reference parameter once as an iterate step after a plain include that it goes
    beyond, forward (`_include:iterate`) and backward (`_revinclude:iterate`)."""
    refs = _reference_params()
    forward, backward = {}, {}
    for (base, first), (second_base, second) in itertools.product(refs, refs):
        if second_base in _referenced_types(base, first) and second["id"] not in forward:
            plain = [Include(base, first, False, False)]
            step = Include(second_base, second, True, False)
            if _adds_something(base, plain, step):
                forward[second["id"]] = _include_case(base, [*plain, step])
    for (source, first), (second_source, second) in itertools.product(refs, refs):
        if source not in _referenced_types(second_source, second) or second["id"] in backward:
            continue
        for target in _referenced_types(source, first):
            plain = [Include(source, first, False, True)]
            step = Include(second_source, second, True, True)
            if _adds_something(target, plain, step):
                backward[second["id"]] = _include_case(target, [*plain, step])
                break
    return [*forward.values(), *backward.values()]


def wildcard_cases() -> list[Case]:
    """`_include=Type:*`: at least everything the Plan-Net and R4 core reference parameters of
    the type reach; at most anything the matches reference at all (a server may know more
    reference parameters, from other IGs)."""
    found = []
    for base in package.TYPES:
        params = _all_reference_params(base)
        if not params:
            continue
        every = _include_case(base, [Include(base, p, False, False) for p in params])
        matched = {package.key(r) for r in package.of_type(base)}
        anything = set().union(*(_local_references(package.RESOURCES[k]) for k in matched))
        query = (("_include", f"{base}:*"),)
        found.append(
            Case(
                f"{base}?_include={base}:*",
                base,
                query,
                every.expected,
                every.included,
                frozenset(anything - matched),
            )
        )
    return found


def _all_reference_params(base: str) -> list[dict]:
    """Plan-Net's reference parameters of `base`, and R4 core's of codes Plan-Net leaves out."""
    codes = {p["code"] for p in package.PLAN_NET_PARAMS + package.CORE_PARAMS if base in p["base"]}
    params = [package.definition(base, code) for code in sorted(codes)]
    return [p for p in params if p["type"] == "reference"]


def _local_references(node) -> set[str]:
    """`Type/id` of every stored resource a reference anywhere in `node` names."""
    if isinstance(node, dict):
        own = {node["reference"]} if node.get("reference") in package.RESOURCES else set()
        return own.union(*(_local_references(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_local_references(v) for v in node))
    return set()


# --- near ------------------------------------------------------------------------------------

# Centres: a stored Location of ours, the examples' own cluster, and open sea far from both.
NEAR_CENTRES = [(41.7658, -72.6734), (15.0, 3.0), (0.0, -30.0)]
NEAR_RADII_KM = [1, 8, 60, 200, 700, 2000, 8000]
# (unit as written in the query, kilometres per unit); no unit means km (R4 search.html).
NEAR_UNITS = [("km", 1.0), ("[mi_i]", 1.609344), ("m", 0.001), ("", 1.0)]
# A location this close (relative) to the radius is left out: rounding may fairly go either way.
NEAR_MARGIN = 0.01


def near_cases() -> list[Case]:
    cases = []
    units = itertools.cycle(NEAR_UNITS)
    for lat, lon in NEAR_CENTRES:
        distances = oracle.distances_km(lat, lon)
        for radius in NEAR_RADII_KM:
            if any(abs(d - radius) <= radius * NEAR_MARGIN for d in distances.values()):
                continue
            unit, km_per_unit = next(units)
            amount = radius / km_per_unit
            value = f"{lat}|{lon}|{_decimal(amount)}" + (f"|{unit}" if unit else "")
            ids = {lid for lid, d in distances.items() if d <= radius}
            cases.append(_case(f"Location-near:near={value}", "Location", [("near", value)], ids))
    return cases


def _decimal(number: float) -> str:
    """Plain decimal notation (FHIR numbers have no exponent), six places at most."""
    return f"{number:.6f}".rstrip("0").rstrip(".")
