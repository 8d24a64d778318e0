"""RuBLiMP's prompt functions: plain Python, where lm-eval would compile a Jinja template for every document."""


def no_context(doc: dict) -> str:
    return ""


def minimal_pair(doc: dict) -> list[str]:
    """The grammatical sentence first (the target is choice 0), then its ungrammatical twin."""
    return [doc["source_sentence"], doc["target_sentence"]]
