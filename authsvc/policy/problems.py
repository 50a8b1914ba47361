"""Policy problems with stable codes, and the faults in what a tool was given.

``PolicyError`` (``authsvc.errors``) is what every caller catches; these refine it:

PolicyError
 +-- Problem        one located problem in a policy or test file, with a snake_case ``code``
 |    |             (``unknown_key``, ``missing_key``, ``yaml_syntax``, ``subject_invalid``...)
 |    +-- InputFault  not a problem in a policy but in what was given: a path that does not
 |                    exist or cannot be read, a directory without YAML files, a file of the
 |                    other kind (a test file where a policy belongs). ``authsvc policy``
 |                    exits 2 for these and 1 for problems in a policy.
 +-- Problems       every problem found: one file's in document order, or those of
                    several files (each file's own, then what they define twice)

Codes are for tools and tests; messages are for people and may change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from authsvc.errors import PolicyError

# str(Problems) is what the service logs and what a refused reload records; a policy with
# thousands of broken subjects must not make a multi-megabyte audit record. The policy
# commands print every problem from ``.problems``.
MAX_RENDERED = 20
GENERIC_CODE = "policy_invalid"


class Problem(PolicyError):
    """One located problem with a stable ``code``; ``details`` holds what a tool can act on
    (for ``unknown_key``: ``did_you_mean``, ``belongs_in``)."""

    code: str = GENERIC_CODE

    def __init__(self, message: str, *, code: str = "", file: str = "", line: int = 0,
                 column: int = 0, hint: str = "", details: Mapping[str, object] | None = None
                 ) -> None:
        if code:
            self.code = code
        self.details = dict(details or {})
        super().__init__(message, file=file, line=line, column=column, hint=hint)


class InputFault(Problem):
    """The input is not something to judge: missing, unreadable, empty, or the wrong kind."""

    code = "input_invalid"


class Problems(PolicyError):
    """Several problems, of one file or of several. Its own file/line/column/message are the
    first one's."""

    def __init__(self, problems: Sequence[PolicyError]) -> None:
        if not problems:
            raise ValueError("Problems needs at least one problem")
        self.problems = tuple(problems)
        first = self.problems[0]
        super().__init__(first.message, file=first.file, line=first.line, column=first.column,
                         hint=first.hint)

    def render(self) -> str:
        """One problem per line; past ``MAX_RENDERED``, a count and where to see them all."""
        shown = [problem.render() for problem in self.problems[:MAX_RENDERED]]
        hidden = len(self.problems) - len(shown)
        if hidden:
            shown.append(f"{self.file}: {hidden} more problem(s); `authsvc policy check` "
                         "lists every one")
        return "\n".join(shown)


def each(exc: PolicyError) -> tuple[PolicyError, ...]:
    """The single problems in ``exc``: its ``problems``, or itself."""
    return exc.problems if isinstance(exc, Problems) else (exc,)


def code_of(exc: PolicyError) -> str:
    """``exc``'s stable code; ``policy_invalid`` for a ``PolicyError`` without one."""
    return exc.code if isinstance(exc, Problem) else GENERIC_CODE


def is_input_fault(exc: PolicyError) -> bool:
    """Whether every problem in ``exc`` is a fault in the input rather than in a policy."""
    return all(isinstance(problem, InputFault) for problem in each(exc))
