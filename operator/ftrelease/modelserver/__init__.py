"""The builtin model server (extra `serve`): an OpenAI-compatible server for a base model with
LoRA adapters (mixed-adapter batching) or a merged model, with the metrics a fine-tune rollout
watches and sampled outputs for review. `python -m ftrelease.modelserver --help` lists its
arguments, which the operator's `builtin` runtime passes. Nothing else in the package imports
this module (it needs torch)."""
