"""ToolWOZ (MultiWOZ turned into tool-use tasks, from the JOSH paper): data, tools, reward, env."""
