"""Numerical parity against the reference implementations' golden folders.

``python -m iiie.parity {brushnet,powerpaint,infedit} GOLDEN_DIR`` runs our code on the
recorded inputs and compares every recorded tensor; it exits non-zero over tolerance.
"""
