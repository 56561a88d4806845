"""Prompt and tool-call formats: how a dialogue is written for a model and how its replies are read."""
