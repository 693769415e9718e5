"""The exceptions every newsbot package raises, in one place so callers can catch by kind.

    NewsbotError                 base: a problem the user can fix; str() is the message to show
    ├── ArticleError             one article or file could not be read (bad format, bad field)
    ├── IndexStoreError          the index is missing, corrupt, locked or built for another model
    ├── QuestionError            the question is empty, too long or otherwise unusable
    └── ConfigurationError       a setting is missing or invalid (e.g. no bot token)

Messages are written for the person who reads them and say what to do next. They never
contain secrets: the bot token is not passed to any of these.
"""

from __future__ import annotations


class NewsbotError(Exception):
    """A problem the user can act on; the CLI prints it as one line and exits non-zero."""


class ArticleError(NewsbotError):
    """An article or corpus file is malformed; ``source`` says which file (and line)."""

    def __init__(self, message: str, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class IndexStoreError(NewsbotError):
    """The index cannot be opened or written as asked."""


class QuestionError(NewsbotError):
    """The question cannot be answered as given (empty, too long, …)."""


class ConfigurationError(NewsbotError):
    """A setting is missing or invalid."""
