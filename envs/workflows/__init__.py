"""Workflow domains (Self-talk): a workflow file, its graph, the scripted client, sub-goal tracking."""

from envs.workflows.workflow import END, Workflow, load_workflow

__all__ = ["END", "Workflow", "load_workflow"]
