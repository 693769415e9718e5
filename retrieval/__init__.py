"""From articles to cited answers: chunk, embed, index, search, compose.

Names are imported on first use (see ``corpus.lazy``).
"""

from __future__ import annotations

from corpus.lazy import lazy_exports

_EXPORTS = {
    "Answer": "retrieval.answer",
    "Citation": "retrieval.answer",
    "NOT_FOUND": "retrieval.answer",
    "compose_answer": "retrieval.answer",
    "Evidence": "retrieval.answer",
    "weigh_evidence": "retrieval.answer",
    "IndexStats": "retrieval.assistant",
    "NewsAssistant": "retrieval.assistant",
    "Chunk": "retrieval.chunking",
    "chunk_article": "retrieval.chunking",
    "Conversation": "retrieval.conversation",
    "is_follow_up": "retrieval.conversation",
    "Embedder": "retrieval.embedding",
    "SentenceTransformerEmbedder": "retrieval.embedding",
    "resolve_model": "retrieval.embedding",
    "FaissIndex": "retrieval.index",
    "Manifest": "retrieval.index",
    "NewContent": "retrieval.index",
    "commit": "retrieval.index",
    "index_exists": "retrieval.index",
    "locked": "retrieval.index",
    "IngestReport": "retrieval.ingest",
    "ingest": "retrieval.ingest",
    "Hit": "retrieval.search",
    "SearchConfig": "retrieval.search",
    "Searcher": "retrieval.search",
    "PACKAGED_MODEL": "retrieval.settings",
    "RetrievalSettings": "retrieval.settings",
    "default_index_dir": "retrieval.settings",
    "QuestionTerms": "retrieval.text",
    "Span": "retrieval.text",
    "question_terms": "retrieval.text",
    "split_sentences": "retrieval.text",
    "terms": "retrieval.text",
    "warm_up": "retrieval.text",
    "words": "retrieval.text",
    "LexicalIndex": "retrieval.lexical",
    "QueryPart": "retrieval.question",
    "QueryPlan": "retrieval.question",
    "SourceMatcher": "retrieval.question",
    "plan_question": "retrieval.question",
    "source_matcher": "retrieval.question",
    "LabelledQuestion": "retrieval.evaluation",
    "EvaluationReport": "retrieval.evaluation",
    "QuestionScore": "retrieval.evaluation",
    "Scores": "retrieval.evaluation",
    "load_questions": "retrieval.evaluation",
    "ablation": "retrieval.evaluation",
    "evaluate": "retrieval.evaluation",
    "evaluate_assistant": "retrieval.evaluation",
    "score_ranking": "retrieval.evaluation",
    "RowMetadata": "retrieval.index",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
