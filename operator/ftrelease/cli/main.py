"""kubectl-finetune: the kubectl plugin for FineTuneReleases (`kubectl finetune ...`).

validate FILE...   check releases offline (and with --server, by a server-side dry run)
revision FILE...   print each release's revision (the digest of its bundle)
status [NAME]      a release's phase, stage (time left), analysis and history; or all (-A)
rollback NAME      all traffic to the previous stable (--to: a retained revision), now
abort NAME         end the rollout in progress; retry NAME rolls a rolled-back bundle out again
approve NAME       approve the current manual stage
promote NAME       complete the current stage now; --full: straight to 100% and promoted
pause NAME, resume NAME
history NAME       each rollout with who started and ended it and the bundle fields it changed
diff NAME A B      the bundle fields two revisions differ in; diff -f FILE: what applying it does
evals NAME         the eval gate: declared against measured scores, candidate and stable, verdict
samples NAME       recent sampled outputs of the candidate and the stable, side by side
failures NAME      incident records of rollbacks by analysis, as JSON lines for review
"""

from __future__ import annotations

import argparse
import json
import sys

from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

from ftrelease.api.revision import revision_of
from ftrelease.api.validation import Problem, is_release, validate_release

from .control import add_commands
from .documents import Document, UnreadableInput, read_documents
from .evals import add_evals
from .history import add_history
from .samples import add_samples
from .simulate import add_simulate
from .status import add_status

EXIT_OK, EXIT_PROBLEMS, EXIT_UNREADABLE = 0, 1, 2


def _releases(files: list[str]) -> list[Document]:
    return [d for d in read_documents(files) if is_release(d.body)]


def _report(document: Document, problems: list[Problem], origin: str = "") -> None:
    for problem in problems:
        prefix = f"{origin}: " if origin else ""
        print(f"{document.source}: {document.label}: {prefix}{problem}")


def validate(args: argparse.Namespace) -> int:
    documents = _releases(args.files)
    server = None
    if args.server:
        from .server import ServerDryRun  # needs a kubeconfig; only load it when asked

        server = ServerDryRun(kubeconfig=args.kubeconfig, context=args.context)
    failed = 0
    for document in documents:
        _, problems = validate_release(document.body)
        _report(document, problems)
        server_problems = server.problems(document.body) if server else []
        _report(document, server_problems, origin="server")
        failed += bool(problems or server_problems)
    checked = f"{len(documents)} release{'s' if len(documents) != 1 else ''}"
    print(f"{checked} checked, {failed} with problems", file=sys.stderr)
    return EXIT_PROBLEMS if failed else EXIT_OK


def revision(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for document in _releases(args.files):
        release, problems = validate_release(document.body)
        if release is None:
            _report(document, problems)
            status = EXIT_PROBLEMS
            continue
        print(f"{document.source}: {document.label}: {revision_of(release.spec.bundle)}")
    return status


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="kubectl finetune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", required=True)
    p_validate = sub.add_parser(
        "validate",
        help="check releases; exit 1 on any problem, 2 on unreadable input",
        description="Checks every FineTuneRelease in the given files (multi-document YAML, "
        "directories recursively, - for stdin). Other kinds are ignored. Prints each problem as "
        "FILE: Kind/name: field.path: message.",
    )
    p_validate.add_argument("files", nargs="+", metavar="FILE")
    p_validate.add_argument(
        "--server", action="store_true", help="also dry-run each release on the current cluster"
    )
    p_validate.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    p_validate.add_argument("--context", help="kubeconfig context")
    p_validate.set_defaults(func=validate)
    p_revision = sub.add_parser("revision", help="print each release's revision")
    p_revision.add_argument("files", nargs="+", metavar="FILE")
    p_revision.set_defaults(func=revision)
    add_commands(sub)
    add_simulate(sub)
    add_status(sub)
    add_history(sub)
    add_evals(sub)
    add_samples(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UnreadableInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except ApiException as exc:  # the apiserver's own words, not a traceback
        print(f"error: {api_error(exc)}", file=sys.stderr)
        return EXIT_PROBLEMS
    except ConfigException as exc:
        print(f"error: no cluster to talk to: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS


def api_error(exc: ApiException) -> str:
    """What the apiserver said (its Status message: `finetunereleases.finetune.dev "x" not
    found`), or the HTTP status when it said nothing readable."""
    try:
        message = json.loads(exc.body or "")["message"]
    except (ValueError, KeyError, TypeError):
        message = ""
    return message or f"HTTP {exc.status} {exc.reason or ''}".strip()


if __name__ == "__main__":
    sys.exit(main())
