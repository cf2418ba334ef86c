"""The error taxonomy used at every I/O edge.

- RetryableError: a transient fault (network down, HTTP 5xx/429, broker gone). Keep the data, retry later
  with backoff; the retry loop for each concern lives in exactly one place.
- RejectedError: the other side refused the data itself (HTTP 400, a garbage payload). Never retry it:
  set it aside (dead-letter file, counter) and keep going.
- FatalError: configuration or authentication is wrong. Retrying cannot help; report it once, clearly.
"""


class BessError(Exception):
    """Base class of all bess-edge errors."""


class RetryableError(BessError):
    """Transient: keep the data and try again later."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RejectedError(BessError):
    """The data itself was refused; set it aside, never retry it as is."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FatalError(BessError):
    """Configuration or authentication problem: retrying cannot help."""


class ConfigError(FatalError):
    """The configuration file or environment is invalid. `problems` holds one plain line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
