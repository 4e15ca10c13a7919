"""The token atlas: what each semantic token does across a whole dataset (``python -m atlas build``)."""
