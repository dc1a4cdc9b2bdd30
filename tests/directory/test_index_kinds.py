"""The index-kind registry: every index table is reached through a registered kind, and each
table's declared value columns are exactly the model's, so writes and COPY fill every column."""

from django.apps import apps

from directory.models import Resource
from directory.search.index import KINDS, TABLES
from directory.search.index.base import KEY_COLUMNS


def _index_models() -> set:
    """Models holding search rows: a `param` column and a foreign key to Resource."""
    found = set()
    for model in apps.get_app_config("directory").get_models():
        names = {f.name for f in model._meta.concrete_fields}
        resource = model._meta.get_field("resource") if "resource" in names else None
        if "param" in names and resource is not None and resource.related_model is Resource:
            found.add(model)
    return found


def test_every_index_table_belongs_to_a_registered_kind():
    assert {table.model for table in TABLES} == _index_models()
    assert len({table.model for table in TABLES}) == len(TABLES)  # each table declared once


def test_each_table_declares_every_value_column_of_its_model():
    for table in TABLES:
        columns = [f.column for f in table.model._meta.concrete_fields if not f.primary_key]
        assert sorted(table.copy_columns) == sorted(columns), table.model.__name__
        assert table.copy_columns[: len(KEY_COLUMNS)] == KEY_COLUMNS


def test_a_kind_reads_the_first_table_it_writes():
    for name, kind in KINDS.items():
        assert kind.tables and kind.table is kind.tables[0], name
        assert set(kind.tables) <= set(TABLES), name
