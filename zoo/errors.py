"""The one exception type users see: a one-line message naming the input and what was expected.

The CLI prints ``ZooError`` messages as ``error: <message>`` and exits non-zero without a traceback.
"""


class ZooError(Exception):
    """Bad input or configuration. The message names the file/key and what was expected, on one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
