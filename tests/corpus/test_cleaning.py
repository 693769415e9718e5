"""Tests for corpus.cleaning: exact drops on the seed pages, and the rules in general."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.cleaning import CleanedText, DroppedLine, clean_text

SEED_DIR = Path(__file__).parents[1] / "data" / "seed-raw"
PRESIDENTS = "vietnam-peru-presidents-talks-lima.txt"
PARLIAMENT = "vietnam-peru-parliamentary-cooperation-lima.txt"

TEASER = "teaser block after 'See more'"

# Every line the cleaner must drop from each seed page, in order, with its reason.

PARLIAMENT_DROPS = [
    (
        "Parliamentary cooperation – a key pillar of Vietnam-Peru relations: leaders",
        "title repeated at the start",
    ),
    (
        (
            "Vietnam’s State President Luong Cuong (left) and President of the Congress "
            "of Peru Eduardo Salhuana at their meeting in Lima on November 13 afternoon "
            "(local time). (Photo: VNA)"
        ),
        "photo caption",
    ),
    (
        (
            "Vietnam’s State President Luong Cuong (left) and President of the Congress "
            "of Peru Eduardo Salhuana at their meeting in Lima on November 13 afternoon "
            "(local time). (Photo: VNA)"
        ),
        "photo caption",
    ),
    ("VNA", "agency sign-off"),
    ("See more", "related-content heading"),
    (
        (
            "Vietnamese Ambassador to Venezuela Vu Trung My (R) presents a gift to former"
            " Venezuelan Ambassador to Vietnam Jorge Rondón Uzcátegui (Photo: the "
            "Vietnamese Embassy in Venezuela)"
        ),
        TEASER,
    ),
    (
        (
            "14th National Party Congress to shape Vietnam’s path to 2045: former "
            "Venezuelan Ambassador"
        ),
        TEASER,
    ),
    (
        (
            "The former diplomat once said when leaving Hanoi in 2019 that: “Vietnam is "
            "not only a place where I worked, it became a part of my diplomatic life”. "
            "Today, in his message to the 14th National Party Congress, his enduring "
            "affection for Vietnam remains steadfast, a quiet thread connecting friends "
            "across half the globe in shared aspirations for peace, independence, and "
            "social justice."
        ),
        TEASER,
    ),
    (
        (
            "Representatives from Laos and Vietnam sign the agreement at the ceremony. "
            "(Photo published by VNA)"
        ),
        TEASER,
    ),
    (
        "Vietnam, Laos step up coordination in border management, protection",
        TEASER,
    ),
    (
        (
            "Under the agreement, the sides committed to focusing on key areas, including"
            " regular and ad hoc exchanges of information on hostile forces’ activities "
            "and transnational crimes, particularly drug trafficking and weapons "
            "smuggling; and coordinated efforts to prevent illegal encroachment, unlawful"
            " settlement, spontaneous cross-border migration, and illegal exploitation of"
            " forest and mineral resources."
        ),
        TEASER,
    ),
    (
        (
            "Minister of Foreign Affairs Le Hoai Trung (R) receives ASEAN "
            "Secretary-General Kao Kim Hourn in Hanoi on January 14, 2026. (Photo: VNA)"
        ),
        TEASER,
    ),
    ("Foreign Minister receives ASEAN Secretary-General", "teaser block after 'See more'"),
    (
        (
            "Foreign Minister Le Hoai Trung called on the ASEAN Secretariat to support "
            "member states to study and propose practical initiatives not only in "
            "economic, trade, and investment cooperation, but also in enhancing "
            "early-warning, response, and problem-solving capacities to address "
            "challenges affecting regional peace, security, and stability."
        ),
        TEASER,
    ),
    (
        (
            "National Assembly Chairman Tran Thanh Man on January 14 presents "
            "certificates of merit from the NA Standing Committee to collectives and "
            "individuals for their outstanding performance in the legislature’s digital "
            "transformation in 2025. (Photo: VNA)"
        ),
        TEASER,
    ),
    ("National Assembly steps up digital transformation", "teaser block after 'See more'"),
    (
        (
            "Immediately after the Politburo issued Resolution No. 57-NQ/TW on "
            "breakthroughs in science and technology development, innovation and national"
            " digital transformation, the Party delegation of the NA rolled out an "
            "implementation plan."
        ),
        TEASER,
    ),
    (
        (
            "Party General Secretary To Lam (R) and outgoing Cambodian Ambassador Chea "
            "Kimtha (Photo: VNA)"
        ),
        TEASER,
    ),
    ("Party chief hosts outgoing Cambodian ambassador", "teaser block after 'See more'"),
    (
        (
            "General Secretary Lam stressed that their relationship is rooted in a shared"
            " history of solidarity, close bonds and mutual sacrifice in pursuit of each "
            "country’s peace, stability and development and ASEAN’s common interests."
        ),
        TEASER,
    ),
    (
        (
            "Prime Minister Pham Minh Chinh (standing) on January 14 chairs the sixth "
            "meeting of the National Steering Committee for the implementation of "
            "Vietnam’s commitments at the 26th United Nations Climate Change Conference "
            "of the Parties (COP26). (Photo: VNA)"
        ),
        TEASER,
    ),
    (
        "Achieving net-zero emissions by 2050 is a political mission of Vietnam: PM",
        TEASER,
    ),
    (
        (
            "Bringing Vietnam to net-zero emissions by 2050 is not merely a promise but a"
            " commitment to action - a political mission of the nation and a "
            "responsibility of the entire political system, the business community, and "
            "every citizen. Therefore, all ministries, sectors, localities, businesses, "
            "and people must focus on fulfilling this mission effectively."
        ),
        TEASER,
    ),
    ("Ambassador Do Hung Viet (second from right( (Photo: VNA)", "teaser block after 'See more'"),
    (
        "Communist Party USA shows confidence in Vietnam’s new development path",
        TEASER,
    ),
    (
        (
            "The documents of the upcoming 14th National Party Congress continue to "
            "reaffirm the guideline of building and defending the Fatherland under a "
            "socialist orientation amid rapid and complex international and regional "
            "developments, with particular emphasis on closely combining development with"
            " national defence, and domestic affairs with foreign affairs."
        ),
        TEASER,
    ),
]
PRESIDENTS_DROPS = [
    (
        "Vietnamese, Peruvian Presidents seek measures to deepen relations",
        "title repeated at the start",
    ),
    (
        "Vietnam’s State President Luong Cuong speaks at the press conference. (Photo: VNA)",
        "photo caption",
    ),
    (
        "Vietnam’s State President Luong Cuong speaks at the press conference. (Photo: VNA)",
        "photo caption",
    ),
    ("Peru.webp", "image file name"),
    ("Peruvian President Dina Ercilia Boluarte Zegarra. (Photo: VNA)", "photo caption"),
    ("VNA", "agency sign-off"),
    ("See more", "related-content heading"),
    (
        (
            "Vietnamese Ambassador to China Pham Thanh Binh (R), Vice Chairman of the "
            "Standing Committee of the National People's Congress of China Li Hongzhong "
            "(C), and President of the Chinese People's Association for Friendship with "
            "Foreign Countries Yang Wanming celebrate the 75th founding anniversary of "
            "diplomatic ties between the two countries. (Photo: VNA)"
        ),
        TEASER,
    ),
    ("Vietnam, China celebrate 75 years of diplomatic relations", "teaser block after 'See more'"),
    (
        (
            "Vietnamese Ambassador to China Pham Thanh Binh noted that since the "
            "normalisation of relations in 1991, the ties between the two Parties and the"
            " two countries have continuously advanced to new heights, achieving "
            "significant accomplishments and milestones."
        ),
        TEASER,
    ),
    (
        (
            "Hungarian Deputy State Secretary for Development of Eastern Relations at the"
            " Ministry of Foreign Affairs and Trade Stifter Adam (L) receives Vietnamese "
            "Ambassador to Hungary Bui Le Thai. (Photo: VOV)"
        ),
        TEASER,
    ),
    ("Hungary treasures relations with Vietnam: official", "teaser block after 'See more'"),
    (
        (
            "Ambassador to Hungary Bui Le Thai affirmed Vietnam’s determination to deepen"
            " the bilateral comprehensive partnership, and develop the ties strongly, "
            "practically and effectively across all fields."
        ),
        TEASER,
    ),
    (
        (
            "Prime Minister Pham Minh Chinh attends and delivers a speech at the "
            'discussion session themed "ASEAN: Connecting to reach out" moderated by '
            "President of the World Economic Forum (WEF) Borge Brende, within the "
            "framework of the 55th annual meeting of the WEF in Davos, Switzerland. "
            "(Photo: VNA)"
        ),
        TEASER,
    ),
    (
        "Outcomes of PM’s Europe trip help Vietnam confidently step into new era",
        TEASER,
    ),
    (
        (
            "Prime Minister Pham Minh Chinh’s official visits to Poland and the Czech "
            "Republic, as well as his attendance at the 55th Annual Meeting of the World "
            "Economic Forum (WEF) and bilateral activities in Switzerland from January "
            "15-23 conveyed a message of determination and aspiration to attract "
            "international resources to drive national development in a new era."
        ),
        TEASER,
    ),
    (
        (
            "An overview of the meeting of the 13th Central Committee of the Communist "
            "Party of Vietnam (Photo: VNA)"
        ),
        TEASER,
    ),
    ("13th Party Central Committee wraps up meeting", "teaser block after 'See more'"),
    (
        (
            "The Party Central Committee (PCC) reached high consensus on the summary "
            "report of Resolution 18-NQ/TW and the plan to streamline the organisational "
            "structure of the political system."
        ),
        TEASER,
    ),
    ("Participants at the meeting (Photo: VNA)", "teaser block after 'See more'"),
    ("Vietnam eyes stronger cooperation with Russia", "teaser block after 'See more'"),
    (
        (
            "A seminar to celebrate the 75th anniversary of Vietnam – Russia diplomatic "
            "ties (January 30, 1950 – 2025) was hosted by the authorities of Saint "
            "Petersburg - the second-largest city of Russia, on January 22."
        ),
        TEASER,
    ),
    (
        (
            "Prime Minister Pham Minh Chinh (fifth from left) attends 27th ASEAN - China "
            "Summit in Laos in October (Photo: VNA)"
        ),
        TEASER,
    ),
    (
        "Foreign policy contributes to propelling Vietnam into new era",
        TEASER,
    ),
    (
        (
            "2024 saw Vietnam significantly expanding its diplomatic activities with "
            "numerous partners and at various important multilateral forums and "
            "mechanisms. The country’s key leaders conducted a total of 60 external "
            "activities, including paying 21 visits to foreign countries and attend major"
            " multilateral conferences, as well as hosting 25 delegations of foreign "
            "leaders to Vietnam."
        ),
        TEASER,
    ),
    (
        (
            "Lao Deputy Minister of Foreign Affairs congratulates the CPV's 95th "
            "anniversary (Photo: VNA)"
        ),
        TEASER,
    ),
    (
        "Lao officials congratulate Vietnamese ambassador on CPV’s 95th anniversary",
        TEASER,
    ),
    (
        (
            "Vietnamese Ambassador to Laos Nguyen Minh Tam hosted a reception in "
            "Vientiane on January 21-22 for over 20 delegations from Lao ministries, "
            "agencies, front and mass organisations who came to offer congratulations on "
            "the 95th founding anniversary of the Communist Party of Vietnam (CPV) and "
            "the upcoming Lunar New Year."
        ),
        TEASER,
    ),
]

EXPECTED_DROPS = {
    PRESIDENTS: PRESIDENTS_DROPS,
    PARLIAMENT: PARLIAMENT_DROPS,
}


def _seed(name: str) -> tuple[str, str]:
    text = (SEED_DIR / name).read_text(encoding="utf-8")
    return text, text.split("\n", 1)[0]


def _clean_seed(name: str) -> tuple[str, CleanedText]:
    text, title = _seed(name)
    return text, clean_text(text, title=title)


# --- the two seed pages ------------------------------------------------------------------


@pytest.mark.parametrize("name", [PRESIDENTS, PARLIAMENT])
def test_seed_drops_exactly_the_boilerplate(name: str) -> None:
    _, cleaned = _clean_seed(name)
    assert [(d.text, d.reason) for d in cleaned.dropped] == EXPECTED_DROPS[name]


@pytest.mark.parametrize("name", [PRESIDENTS, PARLIAMENT])
def test_dropped_line_numbers_point_at_the_input(name: str) -> None:
    text, cleaned = _clean_seed(name)
    lines = text.split("\n")
    for dropped in cleaned.dropped:
        assert lines[dropped.line_no - 1] == dropped.text


@pytest.mark.parametrize(
    "gone",
    [
        "Achieving net-zero emissions by 2050 is a political mission of Vietnam: PM",
        "Vietnam, China celebrate 75 years of diplomatic relations",
        "Hungary treasures relations with Vietnam: official",
        "Foreign Minister receives ASEAN Secretary-General",
        "See more",
        "(Photo",
        "Peru.webp",
    ],
)
def test_no_teaser_or_caption_remains(gone: str) -> None:
    for name in (PRESIDENTS, PARLIAMENT):
        _, cleaned = _clean_seed(name)
        assert gone not in cleaned.text


@pytest.mark.parametrize("name", [PRESIDENTS, PARLIAMENT])
def test_kept_lines_are_byte_identical_input_lines(name: str) -> None:
    text, cleaned = _clean_seed(name)
    input_lines = set(text.split("\n"))
    kept = [line for line in cleaned.text.split("\n") if line]
    assert kept
    assert all(line in input_lines for line in kept)


def test_story_paragraphs_are_kept() -> None:
    _, presidents = _clean_seed(PRESIDENTS)
    _, parliament = _clean_seed(PARLIAMENT)
    assert presidents.text.endswith(
        "Following the talks, the host leader presented the Grand Cross of the Order of "
        "“the Sun of Peru” to the State President of Vietnam./."
    )
    assert "\n\nLima (VNA) – Vietnam’s State President Luong Cuong and his Peruvian" in (
        presidents.text
    )
    assert "\n\nAt the end of the meeting, in recognition of the Vietnamese" in parliament.text
    assert parliament.text.startswith("Vietnam’s State President Luong Cuong and President of")


@pytest.mark.parametrize("name", [PRESIDENTS, PARLIAMENT])
def test_paragraphs_are_separated_by_one_blank_line(name: str) -> None:
    _, cleaned = _clean_seed(name)
    assert "\n\n\n" not in cleaned.text
    assert cleaned.text == cleaned.text.strip()
    assert all(p.strip() == p for p in cleaned.text.split("\n\n"))


@pytest.mark.parametrize("name", [PRESIDENTS, PARLIAMENT])
def test_cleaning_is_idempotent_on_seeds(name: str) -> None:
    _, title = _seed(name)
    _, once = _clean_seed(name)
    twice = clean_text(once.text, title=title)
    assert twice.text == once.text
    assert twice.dropped == ()


# --- the rules in general ----------------------------------------------------------------

STORY = (
    "The city council approved the new budget on Tuesday after a four-hour debate.\n\n"
    "Council members voted 12 to 3 in favour of the plan, which raises spending on schools.\n\n"
    "The mayor said the budget would take effect in January next year."
)


def _reasons(cleaned: CleanedText) -> list[tuple[str, str]]:
    return [(d.text, d.reason) for d in cleaned.dropped]


def test_read_more_block_of_headlines_is_dropped() -> None:
    text = STORY + "\n\nRead more:\n\nFerry service resumes\n\nGold prices rise for a third day"
    cleaned = clean_text(text)
    assert cleaned.text == STORY
    assert _reasons(cleaned) == [
        ("Read more:", "related-content heading"),
        ("Ferry service resumes", "teaser block after 'Read more:'"),
        ("Gold prices rise for a third day", "teaser block after 'Read more:'"),
    ]


def test_related_block_with_summaries_is_dropped() -> None:
    text = (
        STORY + "\n\nRELATED STORIES\n\nFerry service resumes after storm\n"
        "Ferries between the islands resumed on Wednesday after a two-day halt.\n\n"
        "Gold prices rise for a third day\nTraders cited a weaker dollar and strong demand."
    )
    assert clean_text(text).text == STORY


def test_marker_in_the_first_paragraphs_is_not_a_teaser_start() -> None:
    text = "Read more\n\nFerry service resumes\n\nGold prices rise\n\n" + STORY
    cleaned = clean_text(text)
    assert cleaned.text == text
    assert cleaned.dropped == ()


def test_marker_followed_by_more_story_keeps_the_story() -> None:
    # "See more:" introducing a link, after which the article goes on (a listicle section):
    # the marker says nothing, the section heading and its paragraphs stay.
    rest = (
        "FanDuel Sportsbook\n\n"
        "FanDuel offers run lines, totals and player props for every game of the season.\n\n"
        "New users can also claim a welcome bonus when they place their first bet."
    )
    cleaned = clean_text(STORY + "\n\nSee more:\n\n" + rest)
    assert cleaned.text == STORY + "\n\n" + rest
    assert _reasons(cleaned) == [("See more:", "related-content heading")]


def test_link_box_in_the_middle_of_the_story_goes_and_the_story_after_it_stays() -> None:
    rest = (
        "The council will meet again next month to discuss the transport plan.\n\n"
        "Opposition members said they would propose amendments at that meeting."
    )
    text = STORY + (
        "\n\nRelated\n\nFerry service resumes\n\nGold prices rise for a third day\n\n" + rest
    )
    cleaned = clean_text(text)
    assert cleaned.text == STORY + "\n\n" + rest
    assert [d.reason for d in cleaned.dropped] == [
        "related-content heading",
        "teaser list after 'Related'",
        "teaser list after 'Related'",
    ]


def test_section_heading_like_most_read_followed_by_prose_keeps_the_prose() -> None:
    prose = (
        "Altman backs teen founders: Sam Altman is among the backers of an "
        "AI startup founded by two teenagers, which aims to help businesses."
    )
    cleaned = clean_text(STORY + "\n\nMost read\n\n" + prose)
    assert cleaned.text == STORY + "\n\n" + prose
    assert _reasons(cleaned) == [("Most read", "related-content heading")]


@pytest.mark.parametrize(
    "line",
    [
        "Share this article",
        "Share on Facebook",
        "Follow us on Twitter",
        "Subscribe to our newsletter",
        "Sign up for our daily briefing",
        "Click here to download the app",
        "Advertisement",
        "ADVERTISEMENT Article continues below this ad",
        "Facebook Twitter Whatsapp Reddit Email Share",
        "CLICK HERE TO GET THE FOX NEWS APP",
    ],
)
def test_share_and_subscribe_lines_are_dropped(line: str) -> None:
    cleaned = clean_text(f"First paragraph of the story.\n\n{line}\n\nSecond paragraph.")
    assert cleaned.text == "First paragraph of the story.\n\nSecond paragraph."
    assert _reasons(cleaned) == [(line, "share/subscribe line")]


@pytest.mark.parametrize(
    "line",
    [
        "Readers who subscribe to the paper's print edition will see the price rise by 10% "
        "from January, the publisher said on Monday.",
        "Share prices fell 3% in early trading.",
        "Advertisements for the drug were banned in 2019 after complaints from doctors.",
        "Follow-up tests showed no trace of the virus.",
    ],
)
def test_sentences_mentioning_share_or_subscribe_are_kept(line: str) -> None:
    text = f"First paragraph of the story.\n\n{line}"
    assert clean_text(text).text == text


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("12 comments", "share/subscribe line"),
        ("Tell us what YOU think...", "share/subscribe line"),
        ("Updated at 1:23 p.m.", "share/subscribe line"),
        ("Pick Six Newsletter", "share/subscribe line"),
        (
            "Get the latest updates right in your inbox. Subscribe to NJ.com's newsletters.",
            "newsletter or author-contact line",
        ),
        (
            "Have a tip? Amy Kuperinsky may be reached at akuperinsky@example.com. "
            "Follow her on Twitter @AmyKup or on Facebook.",
            "newsletter or author-contact line",
        ),
        (
            "Follow Newsbeat on Instagram, Facebook, Twitter and YouTube.",
            "newsletter or author-contact line",
        ),
        (
            "SEE MORE: Hong Kong protests: 800 students under siege in university",
            "link to another story",
        ),
        ("Related: The 15 Weirdest Galaxies in Our Universe", "link to another story"),
        (
            '[button link="https://example.com/submit/" type="big"] Send us your review[/button]',
            "unrendered page shortcode",
        ),
    ],
)
def test_pitches_comment_prompts_and_story_links_are_dropped(line: str, reason: str) -> None:
    cleaned = clean_text(f"{STORY}\n\n{line}\n\nSecond paragraph.")
    assert cleaned.text == f"{STORY}\n\nSecond paragraph."
    assert _reasons(cleaned) == [(line, reason)]


@pytest.mark.parametrize(
    "line",
    [
        "The newsletter, which has 40,000 subscribers, will close at the end of the year.",
        "Police said the suspect had followed her on Instagram for months before the attack.",
        "Read more: the report runs to 400 pages and makes 52 recommendations to ministers.",
        "Comments from the minister drew criticism from opposition lawmakers on Tuesday.",
        "Updated figures from the statistics office show inflation slowing to 3.1% in May.",
        "Related: the company also said it would cut 1,200 jobs in Europe.",
    ],
)
def test_story_sentences_that_look_like_pitches_are_kept(line: str) -> None:
    text = f"{STORY}\n\n{line}"
    assert clean_text(text).text == text


@pytest.mark.parametrize(
    "line",
    [
        "The minister at the ceremony in Hanoi. (Photo: VNA)",
        "Ambassador Vu Trung My (R) presents a gift (Photo: the Vietnamese Embassy in Venezuela)",
        "Firefighters at the scene on Sunday. (AP Photo/Evan Vucci)",
        "Representatives sign the agreement. (Photo published by VNA)",
        "Skiers on the slopes of Whistler (Getty Images/iStockphoto)",
        "The Glazer family at Old Trafford. Photograph: Greig Cowie/Shutterstock",
        "Photo: Reuters",
        "Image credit: NASA/JPL",
        "Photo by James Trew / Engadget",
        "Getty Images",
        "(Getty Images)",
        "Charley Gallay via Getty Images",
    ],
)
def test_photo_captions_and_credits_are_dropped(line: str) -> None:
    cleaned = clean_text(f"First paragraph of the story.\n\n{line}\n\nSecond paragraph.")
    assert cleaned.text == "First paragraph of the story.\n\nSecond paragraph."
    assert _reasons(cleaned) == [(line, "photo caption")]


@pytest.mark.parametrize(
    "line",
    [
        "Friday, 3 p.m. ET (Amazon Prime Video)",
        "The photo was taken by a passer-by and shared widely online.",
        "He posted an image of the letter on social media (see below).",
    ],
)
def test_lines_that_only_mention_pictures_are_kept(line: str) -> None:
    text = f"First paragraph of the story.\n\n{line}"
    assert clean_text(text).text == text


@pytest.mark.parametrize("name", ["Peru.webp", "IMG_123.jpg", "flood-photo (2).PNG"])
def test_image_file_names_are_dropped(name: str) -> None:
    cleaned = clean_text(f"First paragraph of the story.\n{name}\nSecond paragraph.")
    assert cleaned.text == "First paragraph of the story.\nSecond paragraph."
    assert _reasons(cleaned) == [(name, "image file name")]


def test_repeated_lines_adjacent_or_long_are_dropped_short_fields_kept() -> None:
    quote = "“We will not raise taxes this year,” the minister told reporters in the capital."
    text = "\n\n".join(
        [
            "Intro paragraph of the review.",
            "Where to watch: Netflix",
            "Caption repeated by the page",
            "Caption repeated by the page",
            quote,
            "Second film paragraph.",
            "Where to watch: Netflix",
            quote,
        ]
    )
    cleaned = clean_text(text)
    assert _reasons(cleaned) == [
        ("Caption repeated by the page", "repeated line"),
        (quote, "repeated line"),
    ]
    assert cleaned.text.count("Where to watch: Netflix") == 2


@pytest.mark.parametrize("sign_off", ["VNA", "AFP", "Reuters", "—AP", "(Reuters)", "VNA/VNP"])
def test_agency_sign_off_at_the_end_is_dropped(sign_off: str) -> None:
    cleaned = clean_text(f"{STORY}\n\n{sign_off}\n")
    assert cleaned.text == STORY
    assert _reasons(cleaned) == [(sign_off, "agency sign-off")]


def test_agency_name_elsewhere_is_kept() -> None:
    text = f"VNA\n\n{STORY}\n\nVNA reported that talks will continue next week."
    assert clean_text(text).text == text


def test_title_repeated_at_the_start_is_dropped() -> None:
    cleaned = clean_text("# Budget approved\n\n" + STORY, title="Budget approved")
    assert cleaned.text == STORY
    assert _reasons(cleaned) == [("# Budget approved", "title repeated at the start")]
    later = STORY + "\n\nBudget approved"
    assert clean_text(later, title="Budget approved").text == later


def test_whitespace_between_paragraphs_is_normalised_but_lines_are_not() -> None:
    text = "\n\n  First line keeps its indent.   \r\n\r\n\r\n\nSecond\u00a0line “quoted”.\t\n\n\n"
    cleaned = clean_text(text)
    assert cleaned.text == "  First line keeps its indent.\n\nSecond\u00a0line “quoted”."
    assert cleaned.dropped == ()


def test_empty_and_boilerplate_only_text_cleans_to_empty() -> None:
    assert clean_text("") == CleanedText(text="", dropped=())
    assert clean_text("\n \n") == CleanedText(text="", dropped=())
    only_ads = clean_text("Advertisement\n\nShare this article")
    assert only_ads.text == ""
    assert only_ads.dropped == (
        DroppedLine(1, "Advertisement", "share/subscribe line"),
        DroppedLine(3, "Share this article", "share/subscribe line"),
    )


# --- properties over random pages ---------------------------------------------------------

_PIECES = [
    "The council approved the budget on Tuesday after a long debate in the chamber.",
    "Officials said the measure would take effect in January, pending a final review.",
    "“It is a good day for the city,” the mayor told reporters outside the hall.",
    "Short heading line",
    "See more",
    "Read more:",
    "Related",
    "Ferry service resumes after storm",
    "Minister visits flood zone (Photo: VNA)",
    "Photo: Reuters",
    "IMG_001.jpg",
    "Advertisement",
    "Share this article",
    "VNA",
    "",
    "   ",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES), max_size=25),
    st.sampled_from(["\n", "\n\n", "\r\n"]),
    st.sampled_from([None, "Short heading line"]),
)
def test_cleaning_is_idempotent_and_only_removes_lines(
    pieces: list[str], separator: str, title: str | None
) -> None:
    text = separator.join(pieces)
    once = clean_text(text, title=title)
    assert clean_text(once.text, title=title).text == once.text
    input_lines = {line.rstrip(" \t") for line in text.replace("\r\n", "\n").split("\n")}
    assert all(line in input_lines for line in once.text.split("\n") if line)
    kept = len([line for line in once.text.split("\n") if line.strip()])
    assert kept + len(once.dropped) == len([p for p in pieces if p.strip()])
