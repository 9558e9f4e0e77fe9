"""`EntityId`: the identity of a durable entity, as in `azure.durable_functions`."""

from __future__ import annotations

__all__ = ["EntityId"]


class EntityId:
    """Name and key of a durable entity; its scheduler id is `@{name lower-cased}@{key}`."""

    def __init__(self, name: str, key: str) -> None:
        if name == "":
            raise ValueError("Entity name cannot be empty")
        if key == "":
            raise ValueError("Entity key cannot be empty")
        self.name = name
        self.key = key

    @staticmethod
    def get_scheduler_id(entity_id: EntityId) -> str:
        """The instance id the entity runs under."""
        return f"@{entity_id.name.lower()}@{entity_id.key}"

    @staticmethod
    def get_entity_id(scheduler_id: str) -> EntityId:
        """Parse a scheduler id (`@name@key`) back into an EntityId."""
        if not scheduler_id.startswith("@") or "@" not in scheduler_id[1:]:
            raise ValueError(f"Unexpected format in scheduler id: {scheduler_id!r}")
        name, key = scheduler_id[1:].split("@", 1)
        return EntityId(name, key)

    @staticmethod
    def get_entity_id_url_path(entity_id: EntityId) -> str:
        """The management API path of the entity."""
        return f"entities/{entity_id.name}/{entity_id.key}"

    def __str__(self) -> str:
        return EntityId.get_scheduler_id(self)

    def __repr__(self) -> str:
        return f"EntityId(name={self.name!r}, key={self.key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EntityId) and (self.name, self.key) == (other.name, other.key)

    def __hash__(self) -> int:
        return hash((self.name, self.key))
