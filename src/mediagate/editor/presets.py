"""Style and character presets of the image editor.

A workspace keeps its own presets in ``editor_styles`` / ``editor_characters``; the system
presets ship with the package (``system_presets.json``, fixed ids), are readable by every
workspace and can be neither changed nor deleted. Reference images are named by editor image
id at the edge and stored as asset ids, which is what generation needs.

``/process`` asks for what a preset contributes:

>>> style = await PresetService(session).resolve_style(workspace_id, style_id)  # doctest: +SKIP
>>> style.apply("a fox in the snow") if style else None                           # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.avatars.models import SavedAvatar
from mediagate.clock import utcnow
from mediagate.editor.models import Character, EditorImage, Style
from mediagate.errors import Forbidden, InvalidRequest, NotFound

SYSTEM_PRESETS = Path(__file__).with_name("system_presets.json")


@dataclass(frozen=True)
class StylePreset:
    """A style as the API shows it, system or workspace."""

    id: str
    name: str
    description: str
    prompt_prefix: str
    prompt_suffix: str
    reference_image_id: str | None
    reference_asset_id: str | None
    is_system: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CharacterPreset:
    """A character as the API shows it; ``avatar_asset_id`` is the linked avatar's image."""

    id: str
    name: str
    description: str
    reference_image_ids: tuple[str, ...]
    reference_asset_ids: tuple[str, ...]
    avatar_id: str | None
    avatar_asset_id: str | None
    is_system: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ResolvedStyle:
    """What a style contributes to one generation."""

    id: str
    name: str
    prompt_prefix: str
    prompt_suffix: str
    reference_asset_id: str | None
    is_system: bool

    def apply(self, prompt: str) -> str:
        """``"<prefix> <prompt> <suffix>"``, leaving out empty parts."""
        parts = (self.prompt_prefix.strip(), prompt.strip(), self.prompt_suffix.strip())
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class ResolvedCharacter:
    """What a character (or a saved avatar used as one) contributes to one generation:
    the linked avatar's image first, then the character's own reference images."""

    id: str
    name: str
    description: str
    reference_asset_ids: tuple[str, ...]
    avatar_id: str | None
    is_system: bool


@dataclass(frozen=True)
class SystemPresets:
    styles: dict[str, StylePreset]
    characters: dict[str, CharacterPreset]


@lru_cache(maxsize=1)
def system_presets() -> SystemPresets:
    """The presets shipped with the package, by id, in file order."""
    data = json.loads(SYSTEM_PRESETS.read_text())
    at = datetime.fromisoformat(data["created_at"])
    styles = {
        s["id"]: StylePreset(
            id=s["id"],
            name=s["name"],
            description=s.get("description", ""),
            prompt_prefix=s.get("prompt_prefix", ""),
            prompt_suffix=s.get("prompt_suffix", ""),
            reference_image_id=None,
            reference_asset_id=None,
            is_system=True,
            created_at=at,
            updated_at=at,
        )
        for s in data["styles"]
    }
    characters = {
        c["id"]: CharacterPreset(
            id=c["id"],
            name=c["name"],
            description=c.get("description", ""),
            reference_image_ids=(),
            reference_asset_ids=(),
            avatar_id=None,
            avatar_asset_id=None,
            is_system=True,
            created_at=at,
            updated_at=at,
        )
        for c in data["characters"]
    }
    return SystemPresets(styles, characters)


class PresetRepository:
    """All SQL about presets and the rows they point at."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: Style | Character) -> None:
        self.session.add(row)
        await self.session.flush()

    async def delete(self, row: Style | Character) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def style(self, workspace_id: str, style_id: str) -> Style | None:
        return await self.session.scalar(
            select(Style).where(Style.id == style_id, Style.workspace_id == workspace_id)
        )

    async def styles(self, workspace_id: str) -> Sequence[Style]:
        query = select(Style).where(Style.workspace_id == workspace_id)
        return (await self.session.scalars(query.order_by(Style.created_at, Style.id))).all()

    async def character(self, workspace_id: str, character_id: str) -> Character | None:
        return await self.session.scalar(
            select(Character).where(
                Character.id == character_id, Character.workspace_id == workspace_id
            )
        )

    async def characters(self, workspace_id: str) -> Sequence[Character]:
        query = select(Character).where(Character.workspace_id == workspace_id)
        return (
            await self.session.scalars(query.order_by(Character.created_at, Character.id))
        ).all()

    async def editor_image(self, workspace_id: str, image_id: str) -> EditorImage | None:
        return await self.session.scalar(
            select(EditorImage).where(
                EditorImage.id == image_id, EditorImage.workspace_id == workspace_id
            )
        )

    async def image_ids_by_asset(self, workspace_id: str, asset_ids: set[str]) -> dict[str, str]:
        """asset id -> the (earliest) editor image of the workspace that holds it."""
        if not asset_ids:
            return {}
        rows = await self.session.execute(
            select(EditorImage.asset_id, EditorImage.id)
            .where(EditorImage.workspace_id == workspace_id, EditorImage.asset_id.in_(asset_ids))
            .order_by(EditorImage.created_at.desc(), EditorImage.id.desc())
        )
        # Newest first, so that the earliest image of an asset is the one left in the dict.
        return {asset_id: image_id for asset_id, image_id in rows if asset_id}

    async def avatars(self, workspace_id: str, avatar_ids: set[str]) -> dict[str, SavedAvatar]:
        if not avatar_ids:
            return {}
        rows = await self.session.scalars(
            select(SavedAvatar).where(
                SavedAvatar.workspace_id == workspace_id, SavedAvatar.id.in_(avatar_ids)
            )
        )
        return {a.id: a for a in rows}


class PresetService:
    """Use cases of styles and characters; ``changes`` of an update hold only the fields sent."""

    def __init__(self, session: AsyncSession) -> None:
        self.repo = PresetRepository(session)

    # -- styles ---------------------------------------------------------------------------

    async def list_styles(self, workspace_id: str) -> list[StylePreset]:
        rows = await self.repo.styles(workspace_id)
        return [*system_presets().styles.values(), *await self._style_views(workspace_id, rows)]

    async def get_style(self, workspace_id: str, style_id: str) -> StylePreset:
        system = system_presets().styles.get(style_id)
        if system is not None:
            return system
        row = await self._own_style(workspace_id, style_id)
        return (await self._style_views(workspace_id, [row]))[0]

    async def create_style(
        self,
        workspace_id: str,
        *,
        name: str,
        description: str = "",
        prompt_prefix: str = "",
        prompt_suffix: str = "",
        reference_image_id: str | None = None,
    ) -> StylePreset:
        now = utcnow()
        style = Style(
            workspace_id=workspace_id,
            name=name,
            description=description,
            prompt_prefix=prompt_prefix,
            prompt_suffix=prompt_suffix,
            reference_asset_id=await self._asset_of(
                workspace_id, reference_image_id, "reference_image_id"
            ),
            created_at=now,
            updated_at=now,
        )
        await self.repo.add(style)
        return (await self._style_views(workspace_id, [style]))[0]

    async def update_style(
        self, workspace_id: str, style_id: str, changes: dict[str, Any]
    ) -> StylePreset:
        style = await self._own_style(workspace_id, style_id, writing=True)
        for field in ("name", "description", "prompt_prefix", "prompt_suffix"):
            if field in changes:
                setattr(style, field, changes[field])
        if "reference_image_id" in changes:
            style.reference_asset_id = await self._asset_of(
                workspace_id, changes["reference_image_id"], "reference_image_id"
            )
        style.updated_at = utcnow()
        await self.repo.add(style)
        return (await self._style_views(workspace_id, [style]))[0]

    async def delete_style(self, workspace_id: str, style_id: str) -> None:
        await self.repo.delete(await self._own_style(workspace_id, style_id, writing=True))

    async def resolve_style(self, workspace_id: str, style_id: str) -> ResolvedStyle | None:
        """A system style or one of the workspace's; None when neither has this id."""
        style = system_presets().styles.get(style_id)
        if style is None:
            row = await self.repo.style(workspace_id, style_id)
            if row is None:
                return None
            (style,) = await self._style_views(workspace_id, [row])
        return ResolvedStyle(
            style.id,
            style.name,
            style.prompt_prefix,
            style.prompt_suffix,
            style.reference_asset_id,
            style.is_system,
        )

    # -- characters -----------------------------------------------------------------------

    async def list_characters(self, workspace_id: str) -> list[CharacterPreset]:
        rows = await self.repo.characters(workspace_id)
        return [
            *system_presets().characters.values(),
            *await self._character_views(workspace_id, rows),
        ]

    async def get_character(self, workspace_id: str, character_id: str) -> CharacterPreset:
        system = system_presets().characters.get(character_id)
        if system is not None:
            return system
        row = await self._own_character(workspace_id, character_id)
        return (await self._character_views(workspace_id, [row]))[0]

    async def create_character(
        self,
        workspace_id: str,
        *,
        name: str,
        description: str = "",
        reference_image_ids: Sequence[str] = (),
        avatar_id: str | None = None,
    ) -> CharacterPreset:
        now = utcnow()
        character = Character(
            workspace_id=workspace_id,
            name=name,
            description=description,
            reference_asset_ids=await self._assets_of(workspace_id, reference_image_ids),
            avatar_id=await self._check_avatar(workspace_id, avatar_id),
            created_at=now,
            updated_at=now,
        )
        await self.repo.add(character)
        return (await self._character_views(workspace_id, [character]))[0]

    async def update_character(
        self, workspace_id: str, character_id: str, changes: dict[str, Any]
    ) -> CharacterPreset:
        character = await self._own_character(workspace_id, character_id, writing=True)
        for field in ("name", "description"):
            if field in changes:
                setattr(character, field, changes[field])
        if "reference_image_ids" in changes:
            character.reference_asset_ids = await self._assets_of(
                workspace_id, changes["reference_image_ids"] or ()
            )
        if "avatar_id" in changes:
            character.avatar_id = await self._check_avatar(workspace_id, changes["avatar_id"])
        character.updated_at = utcnow()
        await self.repo.add(character)
        return (await self._character_views(workspace_id, [character]))[0]

    async def delete_character(self, workspace_id: str, character_id: str) -> None:
        await self.repo.delete(await self._own_character(workspace_id, character_id, writing=True))

    async def resolve_character(
        self, workspace_id: str, character_id: str
    ) -> ResolvedCharacter | None:
        """A system character, one of the workspace's, or a saved avatar of the workspace
        used as a character (its name describes it, its image is the reference); None when
        none of these has this id."""
        system = system_presets().characters.get(character_id)
        if system is not None:
            return ResolvedCharacter(system.id, system.name, system.description, (), None, True)
        row = await self.repo.character(workspace_id, character_id)
        if row is not None:
            view = (await self._character_views(workspace_id, [row]))[0]
            avatar_refs = (view.avatar_asset_id,) if view.avatar_asset_id else ()
            return ResolvedCharacter(
                row.id,
                row.name,
                row.description,
                avatar_refs + view.reference_asset_ids,
                row.avatar_id,
                False,
            )
        avatar = (await self.repo.avatars(workspace_id, {character_id})).get(character_id)
        if avatar is None:
            return None
        return ResolvedCharacter(
            avatar.id, avatar.name, avatar.name, (avatar.asset_id,), avatar.id, False
        )

    # -- helpers --------------------------------------------------------------------------

    async def _own_style(self, workspace_id: str, style_id: str, *, writing: bool = False) -> Style:
        if writing and style_id in system_presets().styles:
            raise _read_only("style", style_id)
        style = await self.repo.style(workspace_id, style_id)
        if style is None:
            raise NotFound(f"no style {style_id!r}", code="style_not_found")
        return style

    async def _own_character(
        self, workspace_id: str, character_id: str, *, writing: bool = False
    ) -> Character:
        if writing and character_id in system_presets().characters:
            raise _read_only("character", character_id)
        character = await self.repo.character(workspace_id, character_id)
        if character is None:
            raise NotFound(f"no character {character_id!r}", code="character_not_found")
        return character

    async def _asset_of(self, workspace_id: str, image_id: str | None, field: str) -> str | None:
        if image_id is None:
            return None
        image = await self.repo.editor_image(workspace_id, image_id)
        if image is None:
            raise NotFound(f"no image {image_id!r}", code="image_not_found", field=field)
        if image.asset_id is None:
            raise InvalidRequest(
                f"image {image_id} has not been uploaded yet; PUT its bytes to its upload_url",
                code="image_not_uploaded",
                field=field,
            )
        return image.asset_id

    async def _assets_of(self, workspace_id: str, image_ids: Iterable[str]) -> list[str]:
        return [
            str(await self._asset_of(workspace_id, image_id, f"reference_image_ids.{index}"))
            for index, image_id in enumerate(image_ids)
        ]

    async def _check_avatar(self, workspace_id: str, avatar_id: str | None) -> str | None:
        if avatar_id is not None and not await self.repo.avatars(workspace_id, {avatar_id}):
            raise NotFound(f"no avatar {avatar_id!r}", code="avatar_not_found", field="avatar_id")
        return avatar_id

    async def _style_views(self, workspace_id: str, rows: Sequence[Style]) -> list[StylePreset]:
        images = await self.repo.image_ids_by_asset(
            workspace_id, {r.reference_asset_id for r in rows if r.reference_asset_id}
        )
        return [
            StylePreset(
                id=r.id,
                name=r.name,
                description=r.description,
                prompt_prefix=r.prompt_prefix,
                prompt_suffix=r.prompt_suffix,
                reference_image_id=images.get(r.reference_asset_id or ""),
                reference_asset_id=r.reference_asset_id,
                is_system=False,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]

    async def _character_views(
        self, workspace_id: str, rows: Sequence[Character]
    ) -> list[CharacterPreset]:
        images = await self.repo.image_ids_by_asset(
            workspace_id, {a for r in rows for a in r.reference_asset_ids}
        )
        avatars = await self.repo.avatars(workspace_id, {r.avatar_id for r in rows if r.avatar_id})
        views = []
        for r in rows:
            avatar = avatars.get(r.avatar_id or "")
            views.append(
                CharacterPreset(
                    id=r.id,
                    name=r.name,
                    description=r.description,
                    # An image row that is gone leaves its asset usable but nameless.
                    reference_image_ids=tuple(
                        images[a] for a in r.reference_asset_ids if a in images
                    ),
                    reference_asset_ids=tuple(r.reference_asset_ids),
                    avatar_id=r.avatar_id,
                    avatar_asset_id=avatar.asset_id if avatar else None,
                    is_system=False,
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                )
            )
        return views


def _read_only(kind: str, preset_id: str) -> Forbidden:
    return Forbidden(
        f"{kind} {preset_id} is a system preset and cannot be changed or deleted",
        code="system_preset_read_only",
    )


async def resolve_style(
    session: AsyncSession, workspace_id: str, style_id: str
) -> ResolvedStyle | None:
    return await PresetService(session).resolve_style(workspace_id, style_id)


async def resolve_character(
    session: AsyncSession, workspace_id: str, character_id: str
) -> ResolvedCharacter | None:
    return await PresetService(session).resolve_character(workspace_id, character_id)
