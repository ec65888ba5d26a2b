"""Search terms for every language: CJK cut into characters and pairs, words elsewhere."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from omo.core.search import Query, index_terms


def test_chinese_is_indexed_by_characters_and_neighbouring_pairs() -> None:
    assert index_terms("喝咖啡").split() == ["喝", "咖", "啡", "喝咖", "咖啡"]


def test_words_of_spaced_scripts_are_folded_and_lose_their_accents() -> None:
    assert index_terms("Café AU lait") == "cafe au lait"


def test_japanese_voicing_marks_are_kept() -> None:
    assert "が" in index_terms("がっこう").split()


def test_full_width_latin_is_folded_to_ascii() -> None:
    assert index_terms("ＯＭＯ") == "omo"


def test_a_two_character_query_is_one_pair_term() -> None:
    assert Query.parse("東京").terms() == ["東京"]


def test_a_run_found_only_in_pieces_does_not_match() -> None:
    query = Query.parse("東京都")
    assert not query.matches("東京 と 京都")
    assert query.matches("東京都に行く")


def test_query_expressions_quote_terms_for_both_backends() -> None:
    query = Query.parse("咖啡 cafe")
    assert query.fts5() == '"咖啡" "cafe"*'
    assert query.tsquery() == "'咖啡' & 'cafe':*"


def test_punctuation_only_queries_are_empty() -> None:
    assert Query.parse("?! ...").empty


@given(st.text(max_size=60))
def test_every_query_term_of_a_text_is_in_that_texts_index(text: str) -> None:
    stored = set(index_terms(text).split())
    query = Query.parse(text)
    assert set(query.terms()) <= stored
    assert set(query.words) <= stored
    assert query.matches(text)
