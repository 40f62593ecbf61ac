"""`python -m ftrelease.modelserver.merge --base DIR --adapter DIR --out DIR`: folds a LoRA
adapter into its base (peft's merge_and_unload), writes safetensors and the tokenizer, and prints
the merged artifact's digest (for spec.bundle.artifact.digest)."""

from __future__ import annotations

import argparse
import sys

from peft import PeftModel

from ftrelease.checks.digest import artifact_digest

from .engine import load_model, load_tokenizer


def merge(base: str, adapter: str, out: str) -> str:
    model = PeftModel.from_pretrained(load_model(base), adapter).merge_and_unload()
    model.save_pretrained(out, safe_serialization=True)
    load_tokenizer(base).save_pretrained(out)
    return artifact_digest(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True)
    parser.add_argument("--adapter", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    print(merge(args.base, args.adapter, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
