"""The kubectl-finetune plugin."""
