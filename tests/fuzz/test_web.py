"""Every page's query parameters and every form's fields, fuzzed as every role.

The doors come from the URLconf and the pages' own HTML (see conftest.discover). Each form is
first swept field by field with a fixed corpus of the nastiest values (so every field meets
every one of them), then Hypothesis mixes hostile values into several fields at once, as each
role. Every answer is judged by `harness.Probe`: no 5xx, no database text, nothing logged at
ERROR, and for a refused write, not one row changed.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import ROLES, discover, examples
from .harness import Probe
from .hostile import hostile_form_value

pytestmark = [pytest.mark.django_db]

# Every field meets each of these once, as an administrator (who may reach every form).
SWEEP = [
    "a\x00b😀\ud800",
    "Ж" * 10_000,
    "1e999999",
    str(2**63),
    "9999-12-31T23:59:59+99:00",
]
# Parameters every list-like page may be handed, whether it reads them or not.
COMMON_PARAMS = {"page", "q", "sort", "after", "before", "cursor", "next"}


def _probe(world, role: str) -> Probe:
    return Probe(world.client(role))


def _view_key(path: str) -> str:
    """The path with its ids blanked: one key per view."""
    return re.sub(r"/\d+/", "/N/", path)


def fuzz(n: int, body, **strategies) -> None:
    """Run `body(**drawn)` for `n` (scaled) examples drawn from `strategies`, fixed seed."""

    @given(**strategies)
    @settings(settings.get_profile("fuzz"), max_examples=examples(n))
    def check(**drawn):
        body(**drawn)

    check()


@pytest.fixture
def doors(world):
    return discover(world)


def test_every_page_survives_hostile_query_parameters(world, doors):
    pages, _forms = doors
    assert len(pages) >= 40, sorted(pages)  # the discovery found the app, not a stub
    probe = _probe(world, "admin")
    failures: list[str] = []
    swept: set[tuple[str, str]] = set()
    for path, known in sorted(pages.items()):
        names = sorted(known | COMMON_PARAMS)
        # Deterministic sweep: each known parameter of each view with each nasty value (once
        # per view: /customers/1/ and /customers/2/ read the same parameters).
        view = _view_key(path)
        probe.client = world.client("admin")
        for name in sorted(known):
            if (view, name) in swept:
                continue
            swept.add((view, name))
            for value in SWEEP:
                probe.send("GET", path, query={name: value}, label="sweep")

        def body(role, query, path=path):
            probe.client = world.client(role)
            probe.send("GET", path, query=query, label=role)

        fuzz(
            4,
            body,
            role=st.sampled_from(ROLES),
            query=st.dictionaries(
                st.one_of(st.sampled_from(names), st.text(max_size=8)),
                hostile_form_value(),
                min_size=1,
                max_size=4,
            ),
        )
    print(f"{probe.sent} requests")
    failures.extend(probe.failures)
    assert not failures, "\n".join(failures[:40])


def test_every_form_survives_hostile_fields(world, doors):
    _pages, forms = doors
    assert len(forms) >= 15, sorted(forms)
    probe = _probe(world, "admin")
    failures: list[str] = []
    swept: set[str] = set()
    for (method, action), fields in sorted(forms.items()):
        names = sorted(name for name in fields if name != "csrfmiddlewaretoken")
        baseline = {name: values for name, values in fields.items() if values}
        if _view_key(action) not in swept:
            swept.add(_view_key(action))
            for name in names:
                for value in SWEEP:
                    probe.client = world.client("admin")
                    probe.send(method, action, form={**baseline, name: value}, label="sweep")

        def body(role, hostile, dropped, method=method, action=action, baseline=baseline):
            data = {k: v for k, v in baseline.items() if k not in dropped}
            data.update(hostile)
            probe.client = world.client(role)
            probe.send(method, action, form=data, label=role)

        fuzz(
            3 + len(names) // 2,
            body,
            role=st.sampled_from(ROLES),
            hostile=st.dictionaries(
                st.sampled_from(names or ["x"]), hostile_form_value(), min_size=1, max_size=3
            ),
            dropped=st.sets(st.sampled_from(names or ["x"]), max_size=3),
        )
    print(f"{probe.sent} requests")
    failures.extend(probe.failures)
    assert not failures, "\n".join(failures[:40])


def test_post_only_doors_without_a_rendered_form_survive_hostile_posts(world, doors):
    """Routes no page showed a form for (htmx endpoints, buttons of other roles) get POSTs too."""
    pages, forms = doors
    posted = {action for _method, action in forms}
    probe = _probe(world, "admin")
    failures: list[str] = []
    for path, known in sorted(pages.items()):
        if path in posted:
            continue
        names = sorted(known | {"to", "customer", "channel", "granted", "next", "rules"})

        def body(role, form, path=path):
            probe.client = world.client(role)
            probe.send("POST", path, form=form, label=role)

        fuzz(
            4,
            body,
            role=st.sampled_from(ROLES),
            form=st.dictionaries(st.sampled_from(names), hostile_form_value(), max_size=3),
        )
    print(f"{probe.sent} requests")
    failures.extend(probe.failures)
    assert not failures, "\n".join(failures[:40])
