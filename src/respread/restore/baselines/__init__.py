"""Inference-time fixes measured as baselines: sampling sweeps, logit correction, verbalized sampling, seeded prompts."""
