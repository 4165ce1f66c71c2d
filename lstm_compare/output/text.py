"""Text as the terminal and the pictures show it."""


SHOWN_CHARACTERS = 1000  # of a message in the terminal or a picture; the CSVs keep it whole


def shorten(text: object, limit: int = SHOWN_CHARACTERS) -> str:
    """``text`` on one line, cut to ``limit`` characters with the count of those left out (an exception message
    can be megabytes long; printing or drawing all of it helps no one)."""
    return cut(" ".join(str(text).split()), limit)


def cut(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """``text`` cut to ``limit`` characters, with the count of those left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit].rstrip()}... [{len(text) - limit} more characters]"


def one_line(text: object) -> str:
    """``text`` on one line: line breaks (a multi-line message, a path with a newline) shown as \\n."""
    return str(text).replace("\r", "\\r").replace("\n", "\\n")
