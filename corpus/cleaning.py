"""Drop news-page boilerplate (teasers, captions, share lines) without touching the story text."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise, takewhile

# Every rule here removes whole lines and never edits a line it keeps: evidence is matched
# downstream as exact substrings, so a kept line must stay byte-identical to the input.


@dataclass(frozen=True, slots=True)
class DroppedLine:
    """A line the cleaner removed, kept so a surprising drop can be traced to its rule."""

    line_no: int  # 1-based, in the text given to clean_text()
    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class CleanedText:
    """The cleaned text (paragraphs separated by a blank line) and what was dropped."""

    text: str
    dropped: tuple[DroppedLine, ...] = ()


@dataclass(frozen=True, slots=True)
class _Line:
    no: int
    text: str


_Drops = dict[int, str]  # line number -> reason
_Rule = Callable[[Sequence[_Line], str | None], _Drops]

# --- patterns ---------------------------------------------------------------------------

# A whole line announcing links to other stories.
_RELATED_MARKER = re.compile(
    r"(?:see|read|view) more|(?:also|further) read(?:ing)?|read (?:next|also)"
    r"|related(?: (?:articles?|stories|story|news|content|coverage|posts?|links?|pages?|reading))?"
    r"|more (?:stories|news|articles|headlines|on this (?:story|topic))"
    r"|more from (?:\w+\W*){1,4}|you (?:may|might) also (?:like|be interested in)"
    r"|recommended(?: for you| stories| articles)?|most (?:read|popular|viewed)|trending(?: now)?"
    r"|top stories|latest news|don['’]?t miss|more like this|watch next",
    re.IGNORECASE,
)
# "SEE MORE: Hong Kong protests: 800 students under siege", "Related: Possible Water Plumes"
_MARKED_TEASER = re.compile(r"(?P<marker>[^:]{2,40}):\s+(?P<headline>\S.*)")
_MARKER_TRIM = " \t:.…>»→-–—|"

_IMAGE_FILE = re.compile(
    r"[\w.()\[\] -]{1,120}\.(?:jpe?g|png|gif|webp|avif|svg|bmp|tiff?|heic)", re.IGNORECASE
)
_CREDIT = r"(?:photo(?:graph)?|image|picture|pic|illustration|graphic|video|footage)s?"
_PICTURE_AGENCY = r"(?:getty images|shutterstock|istock(?:photo)?|alamy|ap photo|pa images)"
# "(Photo: VNA)", "(AP Photo/Evan Vucci)", "(Photo published by VNA)", "(Image credit: X)";
# a credit needs ":", "/", "by" or "courtesy", so "(Amazon Prime Video)" is not one.
_PAREN_CREDIT = re.compile(
    r"\((?:[^()]{0,40}\s)?" + _CREDIT + r"(?:\s+credits?)?(?:\s+of\s[^():]{1,40})?"
    r"\s*(?:[:/]|(?:published\s+)?by\b|courtesy\b)[^()]{0,100}\)\s*$"
    r"|\((?:[^()]{0,60}[\s/])?" + _PICTURE_AGENCY + r"\b[^()]{0,40}\)\s*$",
    re.IGNORECASE,
)
# "… Photograph: Apple", "Image credit: Foo" (capitalised label, short credit, no full stop)
_LABEL_CREDIT = re.compile(
    r"(?:^|\s)(?:Photo(?:graph)?|Image|Picture|Illustration|Graphic|Video)s?(?: [Cc]redits?)?"
    r"\s?: [^.!?:]{1,60}$"
)
# "Photo by James Trew / Engadget", "Illustration by Kristen Radtke"
_BY_CREDIT = re.compile(
    r"(?:photo(?:graph)?|image|picture|illustration|graphic)s? (?:by|courtesy of) [^.!?:]{1,60}",
    re.IGNORECASE,
)
_AGENCY_CREDIT = re.compile(
    r"\(?(?:[\w ]{1,30} (?:via|for) )?" + _PICTURE_AGENCY + r"(?:\s*[/,].{0,60})?\)?\.?",
    re.IGNORECASE,
)
_COPYRIGHT = re.compile(r"(?:©|\(c\)|copyright\b).{0,100}", re.IGNORECASE)
# "Installation views, photos © Inexhibit, 2018": a credit ending a short caption.
_CREDIT_COPYRIGHT = re.compile(_CREDIT + r"\s*(?:©|\(c\)|copyright\b)[^.!?]{1,60}$", re.IGNORECASE)
_CAPTION_MAX_WORDS = 20

_SOCIAL_WORDS = frozenset(
    {"facebook", "twitter", "x", "whatsapp", "reddit", "email", "e-mail", "linkedin"}
    | {"pinterest", "telegram", "messenger", "flipboard", "threads", "bluesky", "tumblr"}
    | {"mail", "share", "copy", "link", "print", "sms"}
)
_PROMO = re.compile(
    r"advertisement\b.{0,50}|advertising|sponsored(?: content)?|promoted"
    r"|share(?: (?:this|on|via|to|article|story)\b.*)?|(?:follow|like|join|find) us\b.*"
    r"|subscribe\b.*|sign up\b.*|click here\b.*|(?:download|get) (?:the|our) .{0,40}\bapp\b.*"
    r"|(?:listen to|print|save|email) this (?:article|story)\b.*"
    r"|(?:\d+\s+)?comments?|(?:tell us|let us know) what you think\b.*"
    r"|leave a (?:comment|reply)\b.*"
    r"|(?:last )?updated(?: at| on)?\s[\w:.,/ ]{1,30}|.{0,40}\bnewsletters?",
    re.IGNORECASE,
)
_PROMO_MAX_WORDS = 12
# Longer lines that sell or route the reader rather than tell the story: a newsletter or
# subscription pitch ("Get the latest updates right in your inbox. Subscribe to ..."), or
# how to reach or follow the author ("Follow him on Twitter @...", "may be reached at x@y").
_PITCH = re.compile(
    r"\b(?:subscribe|sign up|sign-up|delivered)\b.{0,80}\b(?:newsletters?|inbox|letterbox)\b"
    r"|\b(?:newsletters?|inbox)\b.{0,80}\b(?:subscribe|sign up)\b"
    r"|\bfollow (?:him|her|them|me|us|[A-Z]\w+(?: [A-Z]\w+)?) on (?:twitter|x|facebook|instagram"
    r"|linkedin|youtube|threads|bluesky|tiktok)\b"
    r"|\b(?:reached|contacted|reach (?:him|her|them)) (?:at|by|via|on) \S+@\S+",
    re.IGNORECASE,
)
_PITCH_MAX_WORDS = 40
# A WordPress shortcode left in the text: "[button link=...]Send us YOUR kit review[/button]"
_SHORTCODE = re.compile(r"\[(?P<tag>[a-z_]+)\b[^\]]*\].*\[/(?P=tag)\]", re.IGNORECASE)

_SIGN_OFF = re.compile(
    r"[—–-]*\s*\(?(?:[A-Z][A-Z./&]{1,9}|Reuters|Xinhua|Bloomberg|Yonhap|Kyodo|Bernama|Anadolu)"
    r"\)?\.?"
)

_SENTENCE_END = (".", ":", ";", ",")
_STORY_STARTED_PARAGRAPHS = 2  # prose paragraphs needed before a related-content marker counts
_TEASER_RUN_LINES = 2  # headlines after a marker inside the story that make a link box
_LONG_REPEAT_WORDS = 12  # a non-adjacent repeat this long is a caption or pull quote


# --- line classification ----------------------------------------------------------------


def _words(text: str) -> int:
    return len(text.split())


def _is_prose(text: str) -> bool:
    """A story paragraph: a sentence or more, not a headline or a label."""
    stripped = text.strip()
    return _words(stripped) >= 8 and stripped.endswith((".", "!", "?", '"', "”", "’", ")", ":"))


def _is_headline(text: str) -> bool:
    stripped = text.strip()
    return (
        2 <= _words(stripped) <= 20
        and len(stripped) <= 160
        and not stripped.endswith(_SENTENCE_END)
    )


def _is_image_file(text: str) -> bool:
    return _IMAGE_FILE.fullmatch(text.strip()) is not None


def _is_caption(text: str) -> bool:
    stripped = text.strip()
    if _PAREN_CREDIT.search(stripped):
        return True
    if _words(stripped) <= 40 and _LABEL_CREDIT.search(stripped):
        return True
    if _words(stripped) <= _CAPTION_MAX_WORDS and _CREDIT_COPYRIGHT.search(stripped):
        return True
    return _BY_CREDIT.fullmatch(stripped) is not None or (
        _AGENCY_CREDIT.fullmatch(stripped) is not None
    )


def _is_related_marker(text: str) -> bool:
    stripped = text.strip().strip(_MARKER_TRIM)
    return len(stripped) <= 40 and _RELATED_MARKER.fullmatch(stripped) is not None


def _is_marked_teaser(text: str) -> bool:
    """A related-content marker and the headline it links to, on one line."""
    match = _MARKED_TEASER.fullmatch(text.strip())
    return (
        match is not None
        and _is_related_marker(match["marker"])
        and _is_headline(match["headline"])
    )


def _is_teaser_line(text: str) -> bool:
    """A line of a list of links: a headline or a picture caption, maybe bulleted."""
    stripped = text.strip().lstrip("-•*·–— ").strip()
    return _is_headline(stripped) or _is_caption(stripped) or _is_image_file(stripped)


def _looks_like_teasers(block: Sequence[_Line]) -> bool:
    """Whether the lines after a marker are a list of other stories, not more of this one.

    A teaser is a headline, optionally with a picture caption and one summary paragraph.
    An article that merely continues after a "See more:" link has consecutive paragraphs.
    """
    kinds = []
    for line in block:
        if _is_caption(line.text) or _is_image_file(line.text):
            kinds.append("caption")
        elif _is_headline(line.text):
            kinds.append("headline")
        else:
            kinds.append("prose")
    if not kinds or kinds[0] == "prose":
        return False
    for previous, kind in pairwise(kinds):
        if kind == "prose" and previous != "headline":
            return False
    headlines = kinds.count("headline")
    return headlines >= 2 or (headlines >= 1 and "prose" not in kinds)


# --- rules: each returns the lines it drops ----------------------------------------------


def _drop_title(lines: Sequence[_Line], title: str | None) -> _Drops:
    if not title or not title.strip():
        return {}
    wanted = " ".join(title.split())
    drops: _Drops = {}
    for line in lines:
        if " ".join(line.text.strip().lstrip("#").split()) != wanted:
            break
        drops[line.no] = "title repeated at the start"
    return drops


def _drop_teaser_block(lines: Sequence[_Line], title: str | None) -> _Drops:
    """Drop "Related stories" and what it lists, at the end of the story or inside it.

    At the end, the marker and every line after it go when they read as a list of other
    stories. Inside the story, the marker goes, with the run of two or more headlines right
    after it (the page's extractor may already have dropped the links); the story resumes at
    the next paragraph.
    """
    paragraphs = 0
    for i, line in enumerate(lines):
        if paragraphs >= _STORY_STARTED_PARAGRAPHS and _is_related_marker(line.text):
            marker = line.text.strip()
            block = lines[i + 1 :]
            if not block or _looks_like_teasers(block):
                drops = {line.no: "related-content heading"}
                drops.update((b.no, f"teaser block after '{marker}'") for b in block)
                return drops
            run = list(takewhile(lambda b: _is_teaser_line(b.text), block))
            drops = {line.no: "related-content heading"}
            # One heading after "See more:" may be the next section of a listicle.
            if len(run) >= _TEASER_RUN_LINES:
                drops.update((b.no, f"teaser list after '{marker}'") for b in run)
            return drops
        if _is_prose(line.text):
            paragraphs += 1
    return {}


def _drop_line_by_line(lines: Sequence[_Line], title: str | None) -> _Drops:
    drops: _Drops = {}
    for line in lines:
        text = line.text.strip()
        if _is_image_file(text):
            drops[line.no] = "image file name"
        elif _is_caption(text):
            drops[line.no] = "photo caption"
        elif _words(text) <= _PROMO_MAX_WORDS and (
            _PROMO.fullmatch(text) or _is_social_buttons(text)
        ):
            drops[line.no] = "share/subscribe line"
        elif _words(text) <= _PITCH_MAX_WORDS and _PITCH.search(text):
            drops[line.no] = "newsletter or author-contact line"
        elif _is_marked_teaser(text):
            drops[line.no] = "link to another story"
        elif _SHORTCODE.search(text):
            drops[line.no] = "unrendered page shortcode"
        elif _words(text) <= 15 and _COPYRIGHT.fullmatch(text):
            drops[line.no] = "copyright line"
    return drops


def _is_social_buttons(text: str) -> bool:
    tokens = text.lower().replace("/", " ").replace("|", " ").split()
    return len(tokens) >= 2 and all(token in _SOCIAL_WORDS for token in tokens)


def _drop_repeats(lines: Sequence[_Line], title: str | None) -> _Drops:
    """Second copies of a line: always when adjacent, else only long ones.

    Short repeats far apart are usually per-item fields ("Where to watch: Netflix") that
    carry information for each item, so they stay.
    """
    drops: _Drops = {}
    seen: set[str] = set()
    previous = None
    for line in lines:
        text = line.text.strip()
        if text in seen and (text == previous or _words(text) >= _LONG_REPEAT_WORDS):
            drops[line.no] = "repeated line"
        seen.add(text)
        previous = text
    return drops


def _drop_sign_off(lines: Sequence[_Line], title: str | None) -> _Drops:
    drops: _Drops = {}
    for line in reversed(lines[1:]):
        text = line.text.strip()
        if len(text) > 25 or not _SIGN_OFF.fullmatch(text):
            break
        drops[line.no] = "agency sign-off"
    return drops


_RULES: tuple[_Rule, ...] = (
    _drop_title,
    _drop_teaser_block,
    _drop_line_by_line,
    _drop_repeats,
    _drop_sign_off,
)


# --- entry point -------------------------------------------------------------------------


def clean_text(text: str, *, title: str | None = None) -> CleanedText:
    """Remove boilerplate lines from an article body; kept lines are returned unchanged.

    Only trailing spaces and runs of blank lines are normalised, so any sentence of the
    input that survives is still an exact substring of the output. Cleaning is idempotent.
    """
    raw = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [_Line(no, line.rstrip(" \t")) for no, line in enumerate(raw, start=1)]
    dropped: dict[int, str] = {}
    # Rules run until nothing changes: removing a block can expose another (e.g. a sign-off
    # that only becomes the last line once the teasers after it are gone).
    changed = True
    while changed:
        changed = False
        for rule in _RULES:
            content = [line for line in lines if line.text.strip()]
            drops = rule(content, title)
            if drops:
                changed = True
                dropped.update(drops)
                lines = [line for line in lines if line.no not in drops]
    by_no = {no: text for no, text in enumerate(raw, start=1)}
    return CleanedText(
        text=_join(lines),
        dropped=tuple(
            DroppedLine(no, by_no[no].rstrip(" \t"), reason)
            for no, reason in sorted(dropped.items())
        ),
    )


def _join(lines: Sequence[_Line]) -> str:
    """Join kept lines, collapsing runs of blank lines to one and trimming the ends."""
    out: list[str] = []
    for line in lines:
        if line.text.strip():
            out.append(line.text)
        elif out and out[-1]:
            out.append("")
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)
