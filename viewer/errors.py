"""The one error a user can mend: its message is written for them, and the page shows it as it is.

Anything else raised while answering a request is a bug: the page says so in one line and the
server's log gets the traceback (``viewer.handlers``).
"""


class UserError(ValueError):
    """A request, file or value the user can mend; the message says what is accepted."""
