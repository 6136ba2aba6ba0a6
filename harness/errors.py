"""One exception hierarchy. Only the CLI turns these into exit codes and one-line messages."""


class LibKDError(Exception):
    """Base class of every error a user can cause and fix."""


class StudyError(LibKDError):
    """A study file is invalid: the message names the field, the value and the fix."""


class DataError(LibKDError):
    """A dataset is missing or malformed."""


class CacheError(LibKDError):
    """A logit cache is missing, corrupt or does not match its key."""


class StorageError(LibKDError):
    """The results database cannot be used as asked."""


class TrialError(LibKDError):
    """A trial cannot go on (for example its loss became NaN)."""
