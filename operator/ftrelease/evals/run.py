"""`python -m ftrelease.evals`: runs a suite's cases against a server's OpenAI API and writes the
scores as the pod's termination message (what the operator reads back), and to the log."""

from __future__ import annotations

import argparse
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from ftrelease.api.bundle import Prompt
from ftrelease.checks.bundle import BundleProblem, read_bundle_prompt
from ftrelease.checks.output import RefusalDetector

from .suite import Answer, Case, CasesProblem, read_cases, result_document, score

log = logging.getLogger("ftrelease.evals")
ATTEMPTS = 3  # per case: a dropped connection is not a bad answer


class EvalFailed(Exception):
    """The run cannot give scores; the message says why (the Job's reason)."""


def ask(client: httpx.Client, model: str, case: Case, max_tokens: int) -> Answer:
    body = {"model": model, "max_tokens": max_tokens, "temperature": 0}
    if case.messages is not None:
        path, body["messages"] = "/chat/completions", case.messages
    else:
        path, body["prompt"] = "/completions", case.prompt
    problem = ""
    for _ in range(ATTEMPTS):
        try:
            response = client.post(path, json=body)
        except httpx.HTTPError as exc:
            problem = f"{exc.__class__.__name__}: {exc}"
            continue
        if response.status_code == 200:
            document = response.json()
            choice = document["choices"][0]
            text = choice["message"]["content"] if "message" in choice else choice["text"]
            tokens = (document.get("usage") or {}).get("completion_tokens") or 0
            return Answer(text or "", int(tokens))
        problem = f"the server answered {response.status_code}: {response.text[:200]}"
        if response.status_code < 500 and response.status_code != 429:
            break  # the case itself is refused: asking again changes nothing
    raise EvalFailed(f"case on line {case.line}: {problem}")


def evaluate(args: argparse.Namespace) -> str:
    try:
        cases, digest = read_cases(Path(args.cases).read_bytes())
    except OSError as exc:
        raise EvalFailed(f"cases {args.cases}: {exc.strerror or exc}") from None
    except CasesProblem as exc:
        raise EvalFailed(f"cases {args.cases}: {exc}") from None
    prompt = Prompt()
    if args.bundle:
        try:
            prompt = read_bundle_prompt(Path(args.bundle), "")
        except BundleProblem as exc:
            raise EvalFailed(str(exc)) from None
    log.info("%d cases from %s (%s) against %s", len(cases), args.cases, digest, args.base_url)
    with (
        httpx.Client(base_url=args.base_url.rstrip("/"), timeout=args.timeout) as client,
        ThreadPoolExecutor(args.concurrency) as pool,
    ):
        answers = list(pool.map(lambda c: ask(client, args.model, c, args.max_tokens), cases))
    scores = score(cases, answers, prompt, RefusalDetector())
    return result_document(args.suite, args.version, scores, len(cases), digest)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ftrelease.evals", description=__doc__)
    p.add_argument("--base-url", required=True, help="the server's OpenAI API, .../v1")
    p.add_argument("--model", required=True, help="the model name clients send")
    p.add_argument("--cases", required=True, help="the suite's cases (JSON lines)")
    p.add_argument("--suite", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--bundle", help="the candidate's bundle.json: its output format is checked")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per answer")
    p.add_argument("--result", default="/dev/termination-log", help="where the result goes")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parser().parse_args(argv)
    try:
        result, code = evaluate(args), 0
    except EvalFailed as exc:
        result, code = f"eval failed: {exc}", 1
    print(result, flush=True)
    try:
        Path(args.result).write_text(result)
    except OSError as exc:
        log.error("could not write the result to %s: %s", args.result, exc)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
