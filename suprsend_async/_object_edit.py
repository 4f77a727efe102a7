"""The edit of one object: the same operations as a user's, sent to the object's path.

An object (a team, an account, a project) is a profile like a user: properties, channels,
language and time zone. `ObjectEdit` is `ProfileEdit` (every builder
method, every check, the operations the official SDK 0.20.0's ``ObjectEdit`` adds) with the
object's ``object_type`` and ``object_id``; ``client.objects.edit(edit)`` sends it as
``PATCH v1/object/{object_type}/{object_id}/``.
"""

from __future__ import annotations

from ._edits import ProfileEdit

__all__ = ["ObjectEdit"]


class ObjectEdit(ProfileEdit):
    """The edit of one object, from ``client.objects.get_edit_instance(object_type, id)``.

    Build it call by call (``set``, ``append``, ``unset``, ``add_email``, ``add_slack``...);
    each value is checked when added, and an edit with `errors` is refused when sent,
    before any I/O. Send it with ``await client.objects.edit(edit)``.
    """

    _subject = "object edit"

    def __init__(self, object_type: str, object_id: str) -> None:
        super().__init__()
        self.object_type = object_type
        self.object_id = object_id

    def __repr__(self) -> str:
        return (
            f"ObjectEdit(object_type={self.object_type!r}, object_id={self.object_id!r},"
            f" operations={len(self.operations)}, errors={len(self._errors)})"
        )
