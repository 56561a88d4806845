"""The `selftrain` command line and the local Prefect server it manages."""

import os

# OpenMP threads wait for work by spinning on their core (libgomp's default). Beside another busy process that spin
# fights it for the core: two torch threads decoded SmolLM2 at 4 tokens/s there, 85 when waiting passively (111 with
# one thread). Read once, when torch loads: so here, before anything imports it; the worker's flow runs inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
