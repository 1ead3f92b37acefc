"""The one error an import raises: what was wrong, where, and what to change.

Every refusal happens before anything is written under the output folder or published, so a
refused import leaves nothing behind to clean up.
"""

from __future__ import annotations


class ImportRefused(Exception):
    """The model cannot be imported as given; the message names the problem and the fix."""


class ParityRefused(ImportRefused):
    """onnxruntime's outputs differ from the reference by more than the tolerance."""
