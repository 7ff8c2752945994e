class ExportError(Exception):
    """A failure the user can act on (missing folder, bad npz, wrong checkpoint). The CLI prints it without a traceback."""
