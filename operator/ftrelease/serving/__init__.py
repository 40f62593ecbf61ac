"""Per-runtime pod templates (builtin, vllm) and the Deployment/Service/ConfigMap builders."""
