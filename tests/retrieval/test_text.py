from retrieval.text import question_terms, split_sentences, terms


def test_sentences_are_exact_slices_and_never_cross_lines():
    text = (
        "Lima (VNA) – Vietnam’s President met her. Then “they” left.\n\n"
        "Dr. Smith stayed in the U.S. all day."
    )
    spans = split_sentences(text)
    sentences = [text[s.start : s.end] for s in spans]
    assert sentences == [
        "Lima (VNA) – Vietnam’s President met her.",
        "Then “they” left.",
        "Dr. Smith stayed in the U.S. all day.",
    ]


def test_irregular_forms_and_inflections_share_a_term():
    assert terms("met") == terms("meeting") == terms("meets")
    assert terms("held talks") == terms("hold talk")
    assert terms("Vietnam’s relations") == terms("vietnam relation")


def test_stopwords_and_question_words_are_not_terms():
    assert terms("Who is the one that did it, and when?") == []


def test_question_terms_separate_names_from_content_words():
    q = question_terms("What did Vietnam's ambassador to Hungary say in 2025?")
    assert q.names == frozenset(terms("Vietnam Hungary 2025"))
    assert q.content == frozenset(terms("ambassador"))
