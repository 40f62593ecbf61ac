"""The response checker beside an OpenAI-compatible runtime (vLLM): a streaming-aware reverse
proxy that measures every answer as the builtin server measures its own (ftrelease.checks), so
one set of analysis templates judges a fine-tune on either runtime. No torch.
`python -m ftrelease.sidecar --help` lists its arguments, which the vllm runtime's pod passes."""
