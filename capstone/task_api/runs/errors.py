"""Why a background run stops before its end: raised inside the run, caught by its worker."""


class StopRun(Exception):
    """A background run must stop: it was cancelled, or is no longer this worker's."""


class LeaseLost(StopRun):
    """The run's lease ran out and it was taken up again: this worker must not write."""


class CancelRequested(StopRun):
    """Someone asked to cancel the run: it stops at this step."""
