"""The library's own errors. Only the edges (CLI, web app) translate them for people."""


class RagError(Exception):
    """Base class: a problem the user can act on. The message says what and how."""

    status_code = 500


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
    """The persisted index was built with another model or chunking than the settings ask for."""

    status_code = 409


class ModelError(RagError):
    """The embedding model cannot be found, loaded or verified."""

    status_code = 500


class StoreError(RagError):
    """The vector store cannot be reached or answered with an error."""

    status_code = 503
