"""Role-play logic, plain Python: the rollout loop, users, JOSH, harvesting, Self-talk, the imagination engine."""
