"""respread's rewards, shared-prompt step and collapse monitor inside your own TRL GRPOTrainer script.

Run: python examples/own_grpo_script.py  (SmolLM2-135M-Instruct on CPU, 4 steps, about a minute)
"""

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from respread.models import resolve_model
from respread.restore import DiversityMonitor, make_reward, share_prompts

model = resolve_model("smollm2-135m-instruct").load_path  # or any HF model id / directory
prompt = [{"role": "user", "content": "Pick a random integer between 1 and 100. Reply with only the number."}]
# One row per group: the rewards find a group's completions by this column, across processes too.
dataset = Dataset.from_list([{"prompt": prompt, "group_id": i} for i in range(64)])

rewards = [
    make_reward("log-rarity", task="integer_1_100", num_generations=8),  # −log(share of the group that said it)
    make_reward("validity", task="integer_1_100"),
]
args = GRPOConfig(
    output_dir="runs/own-grpo", max_steps=4, per_device_train_batch_size=16, num_generations=8,
    max_completion_length=8, top_k=0, reward_weights=[1.0, 0.5], learning_rate=2e-5, logging_steps=1,
    bf16=False, activation_checkpointing=False, use_cpu=True, report_to="none",  # CPU: both off (transformers < 5.24: gradient_checkpointing=False)
)
# Each distinct prompt of a batch runs once, for the loss and the rollouts (checked against TRL's own step once).
trainer = share_prompts(GRPOTrainer(model=model, reward_funcs=rewards, args=args, train_dataset=dataset))
# Exact distribution of integer_1_100 every 2 steps: runs/own-grpo/monitor.jsonl and the trainer's loggers.
DiversityMonitor(["integer_1_100"], every=2, out="runs/own-grpo").attach(trainer)
trainer.train()
