"""The registry of fit forms: the fit and compare commands know these and only these.

A form is one module that declares a `FitForm` (planner.fit.form: columns, fit, bootstrap, predict,
law file, plot) as `FORM`; adding one is that module and one line below. tests/test_fit_forms.py
runs the same checks on every entry.
"""

from __future__ import annotations

from planner.fit.form import FitForm
from planner.fit.forms import chinchilla, datacon, isoflop, overtrain, power, saturating

FORMS: dict[str, FitForm] = {form.name: form for form in (
    chinchilla.FORM,
    datacon.FORM,
    isoflop.FORM,
    overtrain.FORM,
    power.FORM,
    saturating.FORM,
)}


def either(names: list[str]) -> str:
    """'a', 'a or b', 'a, b or c': the forms an option takes, for messages."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def comparable() -> list[str]:
    """Forms that predict a curve in compute, so that `compare` can set two of them side by side."""
    return [name for name, form in FORMS.items() if form.predict is not None]


def writing_laws() -> list[str]:
    """Forms whose fit can be written as a law file for `planner plan`."""
    return [name for name, form in FORMS.items() if form.law is not None]
