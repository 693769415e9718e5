"""Follow-up questions: "and who else did he meet?" is read with the question before it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import question_terms

# Words that point back at something said before.
_ANAPHORA = re.compile(
    r"\b(he|she|they|him|her|them|his|their|it|its|that|this|those|these|there|then|else|also|too)\b",
    re.IGNORECASE,
)
_CONTINUATION = re.compile(r"^\s*(and|but|also|what about|how about|so)\b", re.IGNORECASE)


def is_follow_up(question: str) -> bool:
    """True for a question that leans on the previous one for its meaning."""
    if _CONTINUATION.search(question):
        return True
    has_names = bool(question_terms(question).names)
    return not has_names and bool(_ANAPHORA.search(question))


@dataclass(slots=True)
class Conversation:
    """The context one chat carries from question to question."""

    previous_question: str | None = None

    def context_for(self, question: str) -> str | None:
        """The previous question when ``question`` is a follow-up to it, else ``None``."""
        if self.previous_question and is_follow_up(question):
            return self.previous_question
        return None

    def remember(self, question: str, context: str | None) -> None:
        # Keep the standalone topic: a chain of follow-ups still refers to the first question.
        self.previous_question = context or question

    def forget(self) -> None:
        self.previous_question = None
