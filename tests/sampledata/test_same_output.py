"""The generators give the same data for the same seed as before they were split by resource type.

The digests were recorded from directory/synthetic.py (one module) before the split into
sampledata/; a change here means generated directories differ from earlier runs with that seed.
"""

import hashlib
import json
from pathlib import Path

import pytest

from sampledata.generator import DirectoryGenerator
from sampledata.sample_directory import OUTPUT, SampleBuilder

RECORDED = {
    True: "d1eddf1288e4184591d2bf4dbc3d1cf28c16230cd26f9de6a2887cc9c6844a1f",
    False: "e708f27cc097f78eda6a8a96c6dafd1d28ce80981c5b0cbfea290df2445bcbe2",
}


@pytest.mark.parametrize("link_services", [True, False])
def test_a_small_generation_matches_the_recorded_digest(link_services):
    # Two practitioner blocks and payers, networks and plans; key order counts (stored as sent).
    generator = DirectoryGenerator(1200, 60, 7, link_services=link_services)
    digest = hashlib.sha256()
    for group in [*generator.organization_groups(), *generator.practitioner_groups()]:
        digest.update(json.dumps(group).encode())
    assert digest.hexdigest() == RECORDED[link_services]


def test_the_sample_builder_reproduces_the_shipped_fixture_byte_for_byte():
    bundle = SampleBuilder().build()
    text = json.dumps(bundle, indent=1, ensure_ascii=False) + "\n"
    assert text == Path(OUTPUT).read_text(encoding="utf-8")
