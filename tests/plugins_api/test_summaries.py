"""`gankit plugins` shows each component's first sentence whole, not its docstring's first
line (a sentence wrapped over two lines was cut mid-sentence)."""

from gankit import Loss
from gankit.plugin.manager import default_plugins
from gankit.plugin.registry import Registration


class Wrapped(Loss):
    """The relativistic average loss (Jolicoeur-Martineau 2018, i.e. RaGAN), wrapped over
    two lines. More detail follows.

    And a second paragraph."""

    def discriminator_loss(self, real_scores, fake_scores, ctx):
        return 0.0

    def generator_loss(self, fake_scores, ctx, real_scores=None):
        return 0.0


class NoFullStop(Wrapped):
    """A summary without a full stop
    over two lines

    Body."""


def _summary(component):
    return Registration("loss", "x", component, "test", "test").summary


def test_the_summary_is_the_first_sentence_even_when_wrapped():
    assert _summary(Wrapped) == ("The relativistic average loss (Jolicoeur-Martineau 2018, i.e. "
                                 "RaGAN), wrapped over two lines.")
    assert _summary(NoFullStop) == "A summary without a full stop over two lines"


def test_every_built_in_summary_is_a_whole_sentence():
    registry = default_plugins().registry
    for registration in registry:
        summary = registration.summary
        assert summary.endswith("."), (registration.qualified_name, summary)
