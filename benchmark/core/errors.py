"""User mistakes get one clear line, not a traceback."""


class UserError(Exception):
    """A bad value the user typed or a missing resource; the message names it and what is accepted."""


def choice_error(what: str, value: object, accepted) -> UserError:
    return UserError(f"unknown {what} {value!r}; accepted: {', '.join(sorted(map(str, accepted)))}")
