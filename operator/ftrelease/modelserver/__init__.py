"""The builtin model server and merge tool (torch/transformers; extra `serve`)."""
