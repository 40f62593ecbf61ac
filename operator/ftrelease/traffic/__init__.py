"""The Router protocol and its providers: Gateway API HTTPRoute weights and mirror, replicas."""
