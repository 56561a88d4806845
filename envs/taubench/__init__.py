"""tau-bench retail and airline (databases, policies, tasks; tools and reward follow)."""
