"""Built-in tasks: the categorical panel (ten "pick at random" tasks), the constrained family (five
"name any X that satisfies Y" tasks, where a reply can be wrong as well as narrow) and free-text prompts.

Every prompt asks for a bare answer, because a reply that is only the answer is the one form that can
be both parsed without guessing and scored exactly.
"""

from __future__ import annotations

from respread.tasks.spec import TaskSpec
from respread.tasks.valid_sets import grey_aliases

SUIT_ALIASES = {
    "♥": "hearts", "♡": "hearts", "♦": "diamonds", "♢": "diamonds",
    "♣": "clubs", "♧": "clubs", "♠": "spades", "♤": "spades",
}


def integer_task(low: int, high: int) -> TaskSpec:
    return TaskSpec(
        name=f"integer_{low}_{high}",
        prompt=f"Pick a random integer between {low} and {high}. Reply with only the number.",
        answer_type="integer",
        low=low,
        high=high,
        description=f"uniform integer in [{low}, {high}]; closed set, exact mode scores the bare number",
    )


PRIMES_BELOW_50 = [n for n in range(2, 50) if all(n % d for d in range(2, int(n**0.5) + 1))]
# The 44 sovereign states of the UN geoscheme's Europe, plus Cyprus and Kosovo; transcontinental states
# (Turkey, Georgia, Armenia, Azerbaijan, Kazakhstan) are left out, so naming one counts as wrong.
EUROPEAN_COUNTRIES = [
    "Albania", "Andorra", "Austria", "Belarus", "Belgium", "Bosnia and Herzegovina", "Bulgaria", "Croatia",
    "Cyprus", "Czechia", "Denmark", "Estonia", "Finland", "France", "Germany", "Greece", "Hungary", "Iceland",
    "Ireland", "Italy", "Kosovo", "Latvia", "Liechtenstein", "Lithuania", "Luxembourg", "Malta", "Moldova",
    "Monaco", "Montenegro", "Netherlands", "North Macedonia", "Norway", "Poland", "Portugal", "Romania",
    "Russia", "San Marino", "Serbia", "Slovakia", "Slovenia", "Spain", "Sweden", "Switzerland", "Ukraine",
    "United Kingdom", "Vatican City",
]
COUNTRY_ALIASES = {
    "czech republic": "Czechia", "uk": "United Kingdom", "u.k": "United Kingdom", "great britain": "United Kingdom",
    "britain": "United Kingdom", "the united kingdom": "United Kingdom", "the netherlands": "Netherlands",
    "holland": "Netherlands", "vatican": "Vatican City", "holy see": "Vatican City", "macedonia": "North Macedonia",
    "bosnia": "Bosnia and Herzegovina", "russian federation": "Russia", "republic of ireland": "Ireland",
}


def _subset(name: str, prompt: str, low: int, high: int, valid: list[int], description: str) -> TaskSpec:
    return TaskSpec(
        name=name, prompt=prompt, answer_type="integer", low=low, high=high, valid=[str(v) for v in valid],
        description=description,
    )


def constrained_tasks() -> list[TaskSpec]:
    """Tasks with many right answers and many wrong ones: correctness and spread both vary on small models."""
    return [
        _subset("prime_below_50", "Name a prime number below 50. Reply with only the number.", 1, 49, PRIMES_BELOW_50,
                "any of the 15 primes below 50; other numbers are wrong; exact mode scores the bare number"),
        _subset("even_1_20", "Name an even number from 1 to 20. Reply with only the number.", 1, 20,
                list(range(2, 21, 2)), "any of the 10 even numbers in [1, 20]; exact mode scores the bare number"),
        _subset("multiple_of_7", "Name a positive multiple of 7 below 100. Reply with only the number.", 1, 99,
                list(range(7, 100, 7)), "any of the 14 multiples of 7 in [7, 98]; exact mode scores the bare number"),
        TaskSpec(
            name="european_country",
            prompt="Name a European country. Reply with only the country's name.",
            answer_type="choice",
            valid=EUROPEAN_COUNTRIES,
            aliases=COUNTRY_ALIASES,
            closed=True,
            plurals=False,
            description="46 European states (UN geoscheme Europe, Cyprus, Kosovo); closed set, exact mode",
        ),
        TaskSpec(
            name="word_b",
            prompt="Say an English word that starts with the letter b. Reply with only the word.",
            answer_type="choice",
            valid_source="english_words",
            valid_pattern="^[bB][a-zA-Z]",  # web2 lists the letter "b" itself: an echo of the prompt, not a word
            plurals=False,
            description="english-words web2 entries of two or more letters starting with b (~11,000); other words are wrong",
        ),
    ]


CREATIVE_PROMPTS = [
    "Write a four-line poem about the sea.",
    "Tell me a story in three sentences about a lost key.",
    "Invent a name for a new ice cream flavour and describe it in one sentence.",
    "Describe an imaginary animal in two sentences.",
    "Write the opening line of a mystery novel.",
    "Give me a one-sentence idea for a science-fiction film.",
    "Write a short joke about a cat.",
    "Describe a sunset without using the words 'sun' or 'red'.",
    "Suggest a name for a coffee shop and explain it in one sentence.",
    "Write a haiku about autumn.",
    "Tell me about a dream you might have, in two sentences.",
    "Write a two-sentence story about a robot who learns to paint.",
]


def builtin_tasks() -> list[TaskSpec]:
    return [
        integer_task(1, 10),
        integer_task(1, 100),
        integer_task(1, 1000),
        TaskSpec(
            name="color",
            prompt="Name a random color. Reply with only the color name.",
            answer_type="choice",
            valid_source="css_colors",
            aliases=grey_aliases() | {"grey": "gray"},
            description="CSS3 colour keywords plus common colour words",
        ),
        TaskSpec(
            name="fruit",
            prompt="Name a random fruit. Reply with only the fruit's name.",
            answer_type="choice",
            valid_source="fruits",
            description="curated list of ~110 fruits",
        ),
        TaskSpec(
            name="animal",
            prompt="Name a random animal. Reply with only the animal's name.",
            answer_type="choice",
            valid_source="animals",
            description="curated list of ~260 animals",
        ),
        TaskSpec(
            name="first_name",
            prompt="Give a random first name. Reply with only the name.",
            answer_type="choice",
            valid_source="first_names",
            plurals=False,
            description="first names from faker's English locales (~8,600)",
        ),
        TaskSpec(
            name="word",
            prompt="Say a random English word. Reply with only the word.",
            answer_type="choice",
            valid_source="english_words",
            description="english-words web2 list (~234,000 words)",
        ),
        TaskSpec(
            name="emoji",
            prompt="Pick a random emoji. Reply with only the emoji.",
            answer_type="choice",
            valid_source="emoji",
            plurals=False,
            exact_forms=["{answer}"],
            description="Unicode emoji from the emoji package",
        ),
        TaskSpec(
            name="card_suit",
            prompt="Pick a random playing card suit. Reply with only the suit.",
            answer_type="choice",
            valid=["hearts", "diamonds", "clubs", "spades"],
            aliases=SUIT_ALIASES,
            closed=True,
            exact_forms=["{answer}", "{Answer}"],
            description="closed set of 4 suits; exact mode scores 'hearts' and 'Hearts' forms",
        ),
        TaskSpec(
            name="creative",
            prompts=CREATIVE_PROMPTS,
            answer_type="text",
            description=f"{len(CREATIVE_PROMPTS)} short open-ended creative prompts; text-diversity metrics",
        ),
    ]
