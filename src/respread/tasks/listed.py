"""Closed tasks asked with their candidates listed: the published panel, and `listed_<task>` for any closed task.

The panel of scasella/research-uniform-random-from-llms (`rng_bias/v0_4/distribution_tasks.py`) asks each
question with every valid answer in the system message, so every reply can be checked against a known list
and every task is scored exactly:

    system: You are a uniform random sampler. Output ONLY one {kind} from the list below, exactly as written.
            No punctuation, no extra words.\\n\\nValid {kind}s: {candidate, candidate, ...}
    user:   Pick a random {kind}. (Request ID: {uuid} - ignore this, it is only for deduplication.)

The wording is the published one, "Valid integer between 1 and 100s:" included. The request id makes each
prompt distinct; here it is drawn from the run's seed (`TaskSpec.instantiate`), so a rerun asks exactly the
same prompts, and a task's exact figures are the mean answer distribution over its `request_ids` prompts.
Exact mode scores each candidate exactly as listed, then end-of-turn.

What differs from the published scoring ("Lane A"): there the prompt is flat text (`System: ...\\nUser:
...\\nAssistant:`) without a chat template or request id, a candidate is scored as " candidate" with no
end-of-turn, and the probabilities are renormalised over the list. respread renders the messages through the
model's chat template, so the trained and measured distributions are the ones `respread eval` samples;
"TV among valid" is the same renormalised figure, and valid mass says how much of the reply distribution
the list holds.
"""

from __future__ import annotations

from respread.tasks.spec import TaskSpec

SYSTEM = (
    "You are a uniform random sampler. Output ONLY one {kind} from the list below, exactly as written. "
    "No punctuation, no extra words.\n\nValid {kind}s: {candidates}"
)
USER = "Pick a random {kind}. (Request ID: {request_id} - ignore this, it is only for deduplication.)"
REQUEST_IDS = 4  # prompts (request ids) a listed task is measured on
PREFIX = "listed_"

# The published lists, in the published order (data, quoted as the experiment states them).
COLORS = (
    "red orange yellow green blue purple pink brown black white gray cyan magenta lime navy teal indigo violet gold silver"
).split()
FRUITS = (
    "apple banana cherry grape orange lemon lime peach pear plum mango pineapple strawberry blueberry raspberry "
    "watermelon kiwi papaya apricot melon"
).split()
ANIMALS = (
    "dog cat bear tiger lion elephant giraffe zebra rabbit fox wolf deer owl eagle hawk dolphin whale shark turtle snake"
).split()
FIRST_NAMES = (
    "Alice Bob Charlie David Eve Frank Grace Henry Ivy Jack Kate Liam Mia Noah Olivia Peter Quinn Ruby Sam Tara"
).split()
WORDS = (
    "table chair book lamp door window floor ceiling mountain river ocean forest desert garden flower tree cloud star "
    "planet robot computer phone camera music painting story dream journey bridge castle island harbor market library "
    "museum theater school hospital bakery kitchen road train ship plane key mirror candle basket ladder fountain"
).split()
EMOJI = "🐶 🐱 🦊 🐻 🐼 🦁 🐯 🐸 🐵 🐒 🐔 🐧 🦆 🦉 🐝 🐢 🐳 🦋 🌻 🌈".split()
CARD_SUITS = ["Spades", "Hearts", "Diamonds", "Clubs"]


def default_kind(task: TaskSpec) -> str:
    """The noun a listed prompt names: the task's `kind`, else 'integer between L and H', else the task's name.

    >>> default_kind(TaskSpec(name="european_country", prompt="?", answer_type="choice", valid=["France"]))
    'european country'
    """
    if task.kind:
        return task.kind
    if task.answer_type == "integer":
        return f"integer between {task.low} and {task.high}"
    return task.name.replace("_", " ")


def listed(task: TaskSpec, *, name: str | None = None, kind: str | None = None, request_ids: int = REQUEST_IDS) -> TaskSpec:
    """`task` asked with its candidates listed in the system message, scored exactly as listed.

    The answers, aliases and parser of `task` are kept; its prompts, system message and few-shot turns are
    replaced by the listed ones. `task` must be closed (its list is the whole answer set).
    """
    from respread.tasks.parsing import AnswerParser

    if not task.is_closed:
        raise ValueError(f"task '{task.name}' is open (no fixed answer list), so its candidates cannot be listed")
    kind = kind or default_kind(task)
    candidates = AnswerParser(task).support
    return task.model_copy(
        update={
            "name": name or PREFIX + task.name,
            "system": SYSTEM.format(kind=kind, candidates=", ".join(candidates)),
            "prompts": [USER.format(kind=kind, request_id="{request_id}")],
            "request_ids": request_ids,
            "kind": kind,
            "few_shot": [],
            "prefill": "",
            "exact_forms": ["{answer}"],
            "max_new_tokens": 16,
            "description": f"{len(candidates)} candidates listed in the prompt, {request_ids} request ids; "
            + (task.description or task.name),
        },
        deep=True,
    )


def _choice(name: str, kind: str, candidates: list[str], description: str) -> TaskSpec:
    base = TaskSpec(name=name, prompt="?", answer_type="choice", valid=candidates, closed=True, plurals=False)
    return listed(base, name=PREFIX + name, kind=kind).model_copy(
        update={"description": f"{len(candidates)} {description}, listed in the prompt; {REQUEST_IDS} request ids"}
    )


def published_panel() -> list[TaskSpec]:
    """The ten tasks of the published panel, in its order, every one closed and listed."""
    from respread.tasks.builtin import integer_task

    integers = {
        f"integer_1_{high}": listed(integer_task(1, high), kind=f"integer between 1 and {high}").model_copy(
            update={"description": f"integers 1..{high} listed in the prompt; {REQUEST_IDS} request ids"}
        )
        for high in (10, 100, 1000)
    }
    return [
        integers["integer_1_100"],
        _choice("color", "color", COLORS, "colours"),
        _choice("fruit", "fruit", FRUITS, "fruits"),
        integers["integer_1_10"],
        integers["integer_1_1000"],
        _choice("animal", "animal", ANIMALS, "animals"),
        _choice("first_name", "first name", FIRST_NAMES, "first names"),
        _choice("word", "word", WORDS, "English words"),
        _choice("emoji", "emoji", EMOJI, "emoji"),
        _choice("card_suit", "card suit", CARD_SUITS, "card suits"),
    ]
