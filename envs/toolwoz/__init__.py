"""ToolWOZ (MultiWOZ turned into tool-use tasks, from the JOSH paper): data, tools, reward, env."""

from envs.toolwoz.data import ToolWOZData, ToolWOZTask, load_toolwoz
from envs.toolwoz.env import ToolWOZEnv, oracle_reward

__all__ = ["ToolWOZData", "ToolWOZEnv", "ToolWOZTask", "load_toolwoz", "oracle_reward"]
