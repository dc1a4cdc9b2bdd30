"""What a search parameter and a resource type are, once loaded from SearchParameter resources."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .expressions import Element, Term, static_kind


@dataclass(frozen=True)
class SearchParam:
    """One SearchParameter as it applies to one base type."""

    name: str  # the code, e.g. `address-city`
    type: str  # string | token | reference | date | uri | number | quantity | composite | special
    description: str
    targets: tuple[str, ...] = ()  # reference targets among the supported types
    url: str = ""  # the definition's canonical URL
    expression: str = ""  # the part of the definition's expression about this base type
    chain: tuple[str, ...] = ()  # chains the definition declares
    modifiers: tuple[str, ...] = ()  # modifiers the definition declares
    base: str = ""
    components: tuple[tuple[str, str], ...] = ()  # composite: (definition url, expression)
    terms: tuple[Term, ...] = field(default=(), compare=False, repr=False)

    @property
    def kind(self) -> str:
        """The element type every term selects (e.g. `HumanName`), or '' when they differ."""
        return static_kind(list(self.terms))

    @property
    def fast(self) -> bool:
        """True when every term is read by a direct accessor, without the FHIRPath engine."""
        return all(term.fast for term in self.terms)

    def elements(self, content: dict) -> Iterator[Element]:
        """The typed elements the parameter's expression selects in a resource."""
        for term in self.terms:
            yield from term.elements(content)

    def engine_elements(self, content: dict) -> Iterator[Element]:
        """The same, always evaluated by fhirpathpy."""
        for term in self.terms:
            yield from term.engine_elements(content)


@dataclass(frozen=True)
class ResourceDef:
    type: str
    params: dict[str, SearchParam] = field(default_factory=dict)
    sort_name_param: str | None = None  # which string param gives the `_sort=name` key

    @property
    def reference_params(self) -> list[SearchParam]:
        return [p for p in self.params.values() if p.type == "reference"]
