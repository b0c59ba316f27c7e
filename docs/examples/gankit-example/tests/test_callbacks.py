"""The example's callback through gankit's conformance check: a real tiny run and its
resume, with the column it logs every few steps."""

import pytest
from gankit_example.callbacks import FooledShare

from gankit.testing import CALLBACK_CHECKS, check_callback


def test_callback_passes_the_conformance_check():
    report = check_callback(FooledShare(every=2, samples=4))
    assert report.passed == CALLBACK_CHECKS
    assert report.notes == ()  # its column is declared, so nothing to remark


def test_every_must_be_positive():
    from gankit.errors import RecipeError

    with pytest.raises(RecipeError, match="every"):
        FooledShare(every=0)
