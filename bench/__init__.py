"""Benchmarks: newsbot against the usual LangChain pipeline (see bench/README.md)."""
