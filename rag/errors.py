"""The library's own errors. Only the edges (CLI, web app) translate them for people."""


class RagError(Exception):
    """Base class: a problem the user can act on. The message says what and how."""

    status_code = 500
    headers: dict[str, str] | None = None


class BadInput(RagError):
    """A question, file or parameter that cannot be used as given."""

    status_code = 400


class NotFound(RagError):
    """An article or other named thing that is not in the index."""

    status_code = 404


class EmptyIndex(RagError):
    """The index holds no articles yet, so there is nothing to answer from."""

    status_code = 503


class IndexMismatch(RagError):
    """The persisted index was built with another model, chunking or schema than this version asks for."""

    status_code = 409


class ModelError(RagError):
    """The embedding model cannot be found, loaded or verified."""

    status_code = 500


class SettingsError(RagError):
    """A setting that cannot be used as given (a malformed URL, a missing model folder, ...)."""

    status_code = 500


class Unavailable(RagError):
    """A part the request needs is busy or down for now; the same request may work later."""

    status_code = 503

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class StoreError(Unavailable):
    """The vector store cannot be reached, timed out, or answered with an error."""


class IndexBusy(Unavailable):
    """Another process holds the index for writing."""


class ReadOnlyIndex(RagError):
    """The index folder cannot be written by this process (a read-only mount, or another user's files)."""

    status_code = 403
