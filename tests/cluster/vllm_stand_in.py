"""Stands in for vLLM's OpenAI server on the local platform (vLLM cannot run on these machines):
the builtin model server with the same model and adapter, served under the same name, with the
arguments the vllm runtime passes translated. It is given no bundle, so, like vLLM, it applies no
system prompt and measures nothing of the release: the response checker in front of it does.
Arguments it does not know are an error, so a change in what the operator passes shows here."""

from __future__ import annotations

import argparse
import os
import sys


def translate(argv: list[str]) -> list[str]:
    parser = argparse.ArgumentParser(prog="vllm stand-in")
    parser.add_argument("--model", required=True)
    parser.add_argument("--enable-lora", action="store_true")
    parser.add_argument("--lora-modules")
    parser.add_argument("--max-loras", type=int)
    parser.add_argument("--max-lora-rank", type=int)
    parser.add_argument("--served-model-name")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    served = ["--host", args.host, "--port", str(args.port), "--health-when-loaded"]
    if args.lora_modules:
        name, _, path = args.lora_modules.partition("=")
        return [*served, f"--base={args.model}", f"--adapter={path}", f"--model-name={name}"]
    return [*served, f"--merged={args.model}", f"--model-name={args.served_model_name}"]


if __name__ == "__main__":
    command = [sys.executable, "-m", "ftrelease.modelserver", *translate(sys.argv[1:])]
    os.execv(sys.executable, command)
