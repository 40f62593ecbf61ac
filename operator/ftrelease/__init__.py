"""finetune-release-operator: rolls out fine-tuned models as versioned bundles, in judged stages.

Layout and dependency rules (DESIGN.md §3): `api` imports nothing of ours; `rollout` imports `api`
only and does no I/O; `serving`, `traffic` and `analysis` import `api`; only `operator` and `cli`
talk to the Kubernetes API; only `modelserver` imports torch, and nothing imports `modelserver`.
"""

__version__ = "0.1.0"
