"""``campaign status`` says why a run failed in a sentence, not with an exception's class name."""

from __future__ import annotations

from campaigns.errors import TemplateCheckError
from campaigns.run import failure_sentence
from campaigns.status import user_sentence


def test_a_user_error_is_its_message() -> None:
    error = TemplateCheckError("config.toml:84: campaigns.newsletter.template: not found")
    assert failure_sentence(error) == "config.toml:84: campaigns.newsletter.template: not found"
    # Runs recorded before kept "ClassName: message"; status shows the message alone.
    assert user_sentence("TemplateCheckError: template newsleter.txt.j2 not found in t") == (
        "template newsleter.txt.j2 not found in t"
    )
    assert user_sentence("UnknownSegment: no segment 'VIPS'") == "no segment 'VIPS'"


def test_an_unexpected_error_says_so() -> None:
    assert failure_sentence(KeyError("x")) == "unexpected error (KeyError: 'x'); please report it"
    assert failure_sentence(KeyboardInterrupt()) == "stopped by Ctrl-C or SIGTERM"
    assert user_sentence("KeyError: 'x'") == "unexpected error (KeyError: 'x'); please report it"
    assert user_sentence("disk full") == "disk full"
