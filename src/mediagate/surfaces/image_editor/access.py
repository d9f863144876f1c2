"""Who may use the image editor: a key with the ``image_editor`` scope whose member holds the
``access_image_editor`` permission."""

from __future__ import annotations

from mediagate.auth.principal import Principal


def require_editor(principal: Principal) -> None:
    principal.require("image_editor")
    principal.require_permission("access_image_editor")
