"""Persona draws: deterministic, distinct, rendered from the template, near-duplicates dropped."""

from core.types import Persona
from roleplay import personas


def test_same_seed_same_personas_and_ids_hash_the_attributes():
    a, b = personas.sample_personas(50, seed=3), personas.sample_personas(50, seed=3)
    assert a == b and len({p.id for p in a}) == 50
    assert personas.sample_personas(50, seed=4) != a
    p = a[0]
    assert Persona(attributes=dict(reversed(list(p.attributes.items())))).id == p.id
    assert set(p.attributes) == set(personas.GRID)


def test_template_states_every_attribute():
    p = personas.sample_personas(1, seed=0)[0]
    a = p.attributes
    assert p.text.startswith(f"You are a {a['age']}-year-old {a['race']} individual with a {a['gender']} gender identity")
    assert f"English {a['native_english']} your native language" in p.text
    assert personas._STYLE["verbosity"][a["verbosity"]] in p.text


def test_near_duplicates_are_dropped_and_diversity_is_measured():
    drawn = personas.sample_personas(20, seed=0)
    twin = personas.with_prose(drawn[1], drawn[0].text + " Also likes tea.")
    kept, dropped = personas.drop_near_duplicates([*drawn, twin], threshold=0.8)
    assert dropped == [twin] and kept == drawn
    stats = personas.diversity(kept, len(dropped))
    assert stats["unique_attribute_combinations"] == 20 and stats["near_duplicates_dropped"] == 1
    assert 0 < stats["distinct_2"] <= 1 and stats["distinct_1"] < stats["distinct_2"]
    assert personas.distinct_n(["a b a b"], 1) == 0.5


def test_an_empty_rewrite_keeps_the_template():
    p = personas.sample_personas(1, seed=0)[0]
    assert personas.with_prose(p, "  ").text == p.text and personas.with_prose(p, "Prose.").text == "Prose."
