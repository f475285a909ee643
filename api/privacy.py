"""Personal data in free text, masked for the people who do not handle the post.

Posts carry contact details ("联系人：陈女士，电话13812345678"). The rule (README, 个人信息):

- Who sees them whole: the platform (it posted the record and answers for it) and the staff whose grids
  include the record's grid (they make the pairing and phone the people). Everyone else, leaders,
  analysts, admins and staff of other grids, gets them masked: on the API's reads, on the pages and in
  every export, the monthly report included (leaders read it).
- What is masked: mainland mobile numbers (138****5678), landline numbers (028-****5678), resident
  ID-card numbers (5101**********1234) and e-mail addresses (c***@example.com), written with or without
  spaces or hyphens. Enough stays to tell two apart on a call back, not to call.
- DUIJIE_MASK_PERSONAL_DATA=false (an administrator's setting) turns masking off for everyone.

Masking happens when text is shown; what is stored stays whole, so the people who handle the post can
still read it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from api.principal import Principal

# Digits not glued to other digits or letters, so an order number's middle is not taken for a phone.
_EDGE_L, _EDGE_R = r"(?<![0-9A-Za-z])", r"(?![0-9A-Za-z])"
ID_CARD = re.compile(_EDGE_L + r"([1-9]\d{3})\d{2}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
                     r"(\d{3}[\dXx])" + _EDGE_R)
MOBILE = re.compile(_EDGE_L + r"(1[3-9]\d)[- ]?\d{4}[- ]?(\d{4})" + _EDGE_R)
LANDLINE = re.compile(_EDGE_L + r"(0\d{2,3})[- ]?\d{3,4}[- ]?(\d{4})" + _EDGE_R)
EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9])[A-Za-z0-9._%+-]*"
                   r"(@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})")
# The fields of a need or resource that hold what people wrote.
TEXT_FIELDS = ("title", "description")
HANDLERS = ("platform", "staff")


def mask(text: str) -> str:
    """The text with its phone, ID-card and e-mail details masked (see the module's rule)."""
    if not text or not any(ch.isdigit() or ch == "@" for ch in text):
        return text
    text = ID_CARD.sub(lambda m: f"{m[1]}{'*' * 10}{m[2][-4:]}", text)
    text = MOBILE.sub(lambda m: f"{m[1]}****{m[2]}", text)
    text = LANDLINE.sub(lambda m: f"{m[1]}-****{m[2]}", text)
    return EMAIL.sub(lambda m: f"{m[1]}***{m[2]}", text)


def sees_whole(principal: Principal | None, grid: str, enabled: bool = True) -> bool:
    """Whether this caller reads a post of `grid` with its contact details whole."""
    if not enabled:
        return True
    if principal is None or principal.role not in HANDLERS:
        return False
    return principal.role == "platform" or grid in principal.grids


def masker(principal: Principal | None, enabled: bool = True) -> Callable[[str, str], str]:
    """(text, grid) -> the text as this caller may read it: for templates and exports."""
    def shown(text: str, grid: str = "") -> str:
        return text if sees_whole(principal, grid, enabled) else mask(text)
    return shown


def shown_row(row: Any, principal: Principal | None, enabled: bool = True) -> Any:
    """An ORM row of a need or resource for a response: itself when the caller sees it whole, else a dict of
    its columns with the text masked (the response model reads either)."""
    if sees_whole(principal, getattr(row, "grid", "") or "", enabled):
        return row
    out = {c.key: getattr(row, c.key) for c in row.__table__.columns}
    for name in TEXT_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = mask(out[name])
    return out
