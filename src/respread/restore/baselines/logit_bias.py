"""Logit correction: one token-level bias vector fitted so one closed task's exact distribution is uniform.

The bias is the kind OpenAI-style APIs take as `logit_bias` and transformers applies as a logits processor:
a constant added to chosen tokens' raw logits at every step, before temperature and truncation. It is
fitted on the tokens that spell the task's answers (each surface form exact mode scores, plus end-of-turn),
so it stays a short, portable {token id: bias} map rather than a vocabulary-sized vector.

Objective, through the teacher-forced probabilities the sampler would give each reply:

    minimise  KL(U ‖ p_b) = −log k − (1/k) · Σ_{a ∈ support} log p_b(a),
    p_b(a) = Σ_{forms f of a} Π_t softmax((ℓ_t + b) / T)[f_t],

where ℓ_t are the model's raw logits before the t-th token of form f followed by end-of-turn, and U is
uniform over the k valid answers. The loss is finite only if every answer has mass, and it falls to 0
only when each answer has exactly 1/k (so all mass is valid and spread evenly). A bias is the same at every
step and every context, so the minimum need not be 0: integers are spelled digit by digit, and a bias on
eleven tokens (0–9, end-of-turn) cannot set a hundred answers' probabilities independently.

The model is run once (the logits do not depend on the bias); the fit then works on each position's
logits of the biased tokens plus the log-sum-exp of all others, so it is a small, exact optimisation.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from respread.errors import RespreadError
from respread.records import write_json_atomic
from respread.tasks import AnswerParser, TaskSpec

BIAS_FORMAT = "respread.logit_bias/1"


@dataclass
class LogitBias:
    """A fitted bias: token id -> value added to that token's raw logit, with what it was fitted on."""

    bias: dict[int, float]
    model: str
    task: str
    temperature: float
    tokens: dict[int, str] = field(default_factory=dict)  # token id -> its text, for a reader of the file
    fit: dict = field(default_factory=dict)  # loss and exact figures before and after, iterations

    def as_pairs(self) -> tuple[tuple[int, float], ...]:
        """The form `SamplingParams(logit_bias=...)` takes."""
        return tuple(sorted((int(t), float(b)) for t, b in self.bias.items()))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        payload = {"format": BIAS_FORMAT, **asdict(self)}
        payload["bias"] = {str(t): b for t, b in self.bias.items()}
        payload["tokens"] = {str(t): s for t, s in self.tokens.items()}
        write_json_atomic(path, payload)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "LogitBias":
        path = Path(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise RespreadError(f"logit-bias file {path} does not exist; fit one with `respread baselines`") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RespreadError(f"logit-bias file {path} is not valid JSON ({exc})") from exc
        if not isinstance(payload, dict) or payload.get("format") != BIAS_FORMAT:
            raise RespreadError(f"logit-bias file {path}: expected format '{BIAS_FORMAT}' (a file `respread baselines` wrote)")
        try:
            bias = {int(t): float(b) for t, b in payload["bias"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise RespreadError(f"logit-bias file {path}: 'bias' must map token ids to numbers") from exc
        if not all(math.isfinite(b) for b in bias.values()):
            raise RespreadError(f"logit-bias file {path}: a bias is not finite")
        return cls(
            bias=bias,
            model=str(payload.get("model", "")),
            task=str(payload.get("task", "")),
            temperature=float(payload.get("temperature", 1.0)),
            tokens={int(t): s for t, s in payload.get("tokens", {}).items()},
            fit=payload.get("fit", {}),
        )


def fit_logit_bias(backend, task: TaskSpec, *, temperature: float = 1.0, max_iterations: int = 500, log=None) -> LogitBias:
    """Fit the bias minimising KL(uniform over the task's answers ‖ biased exact distribution); see module doc.

    Uses every prompt of the task (the loss is averaged over prompts) and the surface forms exact mode
    scores. Optimised with L-BFGS (strong Wolfe line search) from b = 0.
    """
    import torch

    if not task.is_closed:
        raise RespreadError(f"task '{task.name}' is not closed: logit correction needs the whole answer set to be uniform over")
    if temperature <= 0:
        raise RespreadError("logit correction needs a temperature above 0 (greedy decoding has no distribution to flatten)")
    parser = AnswerParser(task)
    answers = list(parser.support)
    forms = [parser.surface_forms(a) for a in answers]
    flat = [f for group in forms for f in group]
    owner = torch.tensor([i for i, group in enumerate(forms) for _ in group])

    # The tokens the forms are spelled with (plus end-of-turn) get a bias; no model call needed to find them.
    token_ids = sorted({t for i in range(len(task.prompts)) for seq in backend.answer_token_ids(task.prompt(i), flat) for t in seq})
    biased = torch.tensor(token_ids)
    column = {t: i for i, t in enumerate(token_ids)}

    def reduce(targets, logits):
        scaled = logits / temperature
        rest = scaled.clone()
        rest[:, biased] = float("-inf")
        return (
            torch.tensor([column[int(t)] for t in targets.tolist()]),
            scaled[:, biased].clone(),  # [L, |S|]
            torch.logsumexp(rest, dim=-1),  # [L]: every other token's share of the normaliser
        )

    prompts_data = []
    for prompt_index in range(len(task.prompts)):
        rows = backend.teacher_forced_logits(task.prompt(prompt_index), flat, reduce=reduce)
        width = max(len(cols) for cols, _, _ in rows)
        n = len(rows)
        cols = torch.zeros(n, width, dtype=torch.long)
        kept = torch.zeros(n, width, len(token_ids))
        rest = torch.zeros(n, width)
        mask = torch.zeros(n, width)
        for i, (c, k, r) in enumerate(rows):
            cols[i, : len(c)], kept[i, : len(c)], rest[i, : len(c)], mask[i, : len(c)] = c, k, r, 1.0
        prompts_data.append((cols, kept, rest, mask))

    def answer_logprobs(b):
        """log p_b(a) per prompt and answer: [prompts, k]."""
        out = []
        for cols, kept, rest, mask in prompts_data:
            shifted = kept + b / temperature
            normaliser = torch.logaddexp(rest, torch.logsumexp(shifted, dim=-1))
            token_logp = shifted.gather(-1, cols[..., None]).squeeze(-1) - normaliser
            form_logp = (token_logp * mask).sum(-1)
            answer_logp = torch.full((len(answers),), float("-inf"), dtype=form_logp.dtype)
            answer_logp = answer_logp.scatter_reduce(0, owner, form_logp, reduce="amax")
            # log Σ_forms exp(form_logp), computed stably around each answer's best form
            answer_logp = answer_logp + torch.log(
                torch.zeros(len(answers), dtype=form_logp.dtype).index_add(0, owner, torch.exp(form_logp - answer_logp[owner]))
            )
            out.append(answer_logp)
        return torch.stack(out)

    def loss_of(b):
        return -answer_logprobs(b).mean() - math.log(len(answers))

    b = torch.zeros(len(token_ids), dtype=torch.float64, requires_grad=True)
    prompts_data = [tuple(x.double() if x.is_floating_point() else x for x in data) for data in prompts_data]
    with torch.no_grad():
        before = _figures(answer_logprobs(b), len(answers))
        before["kl_uniform_nats"] = float(loss_of(b))
    optimiser = torch.optim.LBFGS([b], lr=1.0, max_iter=max_iterations, line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)
    evaluations = 0

    def closure():
        nonlocal evaluations
        optimiser.zero_grad()
        loss = loss_of(b)
        loss.backward()
        evaluations += 1
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        after = _figures(answer_logprobs(b), len(answers))
        after["kl_uniform_nats"] = float(loss_of(b))
    if log:
        log(
            f"logit bias on {task.name}: {len(token_ids)} tokens, KL(U‖p) {before['kl_uniform_nats']:.3f} → "
            f"{after['kl_uniform_nats']:.4f} nats, TV valid {before['tv_valid']:.3f} → {after['tv_valid']:.4f}"
        )
    tokenizer = backend.tokenizer
    return LogitBias(
        bias={t: float(v) for t, v in zip(token_ids, b.detach().tolist())},
        model=backend.name,
        task=task.name,
        temperature=temperature,
        tokens={t: tokenizer.convert_ids_to_tokens(t) for t in token_ids},
        fit={"before": before, "after": after, "loss_evaluations": evaluations, "forms": parser.exact_forms()},
    )


def _figures(answer_logprobs, k: int) -> dict:
    """Valid mass and TV to uniform among valid answers of the prompt-averaged exact distribution."""
    probs = answer_logprobs.exp().mean(0)
    mass = float(probs.sum())
    tv_valid = 0.5 * float((probs / probs.sum() - 1.0 / k).abs().sum())
    return {"valid_mass": mass, "tv_valid": tv_valid}
