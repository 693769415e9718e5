"""Optional LLM-written answers: prompt, chat client, citation check and the step itself.

Nothing here runs unless ``NEWSBOT_LLM_BASE_URL`` is set; the extractive answer is the
default and the fallback.
"""

from .check import CheckedReply, CheckedSentence, CitationChecker, SupportFeatures, read_reply
from .client import ChatClient, ChatFailure
from .prompt import NOT_FOUND_REPLY, Passage, numbered_passages, prompt_messages
from .writer import AnswerWriter

__all__ = [
    "NOT_FOUND_REPLY",
    "AnswerWriter",
    "ChatClient",
    "ChatFailure",
    "CheckedReply",
    "CheckedSentence",
    "CitationChecker",
    "Passage",
    "SupportFeatures",
    "numbered_passages",
    "prompt_messages",
    "read_reply",
]
